"""Cache-aside for products and catalog pages in Redis, with versioned keys.

A write never deletes a cached value: it bumps a version after its commit, and readers build
their key from the versions they read *before* going to the database. So a reader that read
the old row just before a write can only cache it under the old version, which nobody reads
again: a read after a write never sees the old value.

- ``catalog:epoch`` is in every key; bumping it drops everything (bulk import).
- ``catalog:listver`` is in every page key; any product write bumps it.
- ``catalog:pver:<id>`` is in that product's key; its writes and stock changes bump it.

Redis down: every method answers "miss" or does nothing, logs it (at most every 10 s),
and the caller reads the database.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import redis.asyncio as redis
import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache lookups by result (hit, miss, error).",
    ["service", "cache", "result"],
)
EPOCH = "catalog:epoch"
LIST_VERSION = "catalog:listver"
_LOG_EVERY_S = 10.0


# KEYS: the epoch and the entry's version counter; ARGV: the entry's name.
_READ = """
local key = 'catalog:' .. (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[1] .. ':'
    .. (redis.call('GET', KEYS[2]) or '0')
return {key, redis.call('GET', key)}
"""

# KEYS: the epoch, then each product's version counter; ARGV: each product's entry name.
_READ_MANY = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local found = {}
for i = 2, #KEYS do
  local version = redis.call('GET', KEYS[i]) or '0'
  local key = 'catalog:' .. epoch .. ':' .. ARGV[i - 1] .. ':' .. version
  found[#found + 1] = key
  found[#found + 1] = redis.call('GET', key) or false
end
return found
"""


def _product_version_key(product_id: uuid.UUID) -> str:
    return f"catalog:pver:{product_id}"


class CatalogCache:
    def __init__(self, client: redis.Redis, *, ttl_s: int, service: str) -> None:
        self.client = client
        self._read = client.register_script(_READ)
        self._read_many = client.register_script(_READ_MANY)
        self.ttl_s = ttl_s
        self.service = service
        self._last_warning = 0.0

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > _LOG_EVERY_S:
            self._last_warning = now
            log.warning("cache_unavailable_reading_database", error=repr(exc))

    async def get_product(self, product_id: uuid.UUID) -> tuple[str | None, bytes | None]:
        """(the key to store a fresh copy under, the cached copy or None)."""
        return await self._lookup(
            "product", _product_version_key(product_id), f"product:{product_id}"
        )

    async def get_products(
        self, product_ids: list[uuid.UUID]
    ) -> list[tuple[str | None, bytes | None]]:
        """``get_product`` for each id, in one round trip."""
        try:
            found = await self._read_many(
                keys=[EPOCH, *(_product_version_key(p) for p in product_ids)],
                args=[f"product:{p}" for p in product_ids],
            )
        except (redis.RedisError, OSError) as exc:
            self._unavailable(exc)
            CACHE_REQUESTS.labels(self.service, "product", "error").inc(len(product_ids))
            return [(None, None)] * len(product_ids)
        pairs: list[tuple[str | None, bytes | None]] = [
            (_text(found[i]), found[i + 1]) for i in range(0, len(found), 2)
        ]
        hits = sum(1 for _, value in pairs if value is not None)
        CACHE_REQUESTS.labels(self.service, "product", "hit").inc(hits)
        CACHE_REQUESTS.labels(self.service, "product", "miss").inc(len(pairs) - hits)
        return pairs

    async def get_page(self, params: dict[str, Any]) -> tuple[str | None, bytes | None]:
        canonical = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] is not None)
        digest = hashlib.sha1(canonical.encode()).hexdigest()
        return await self._lookup("list", LIST_VERSION, f"list:{digest}")

    async def _lookup(
        self, cache: str, version_key: str, name: str
    ) -> tuple[str | None, bytes | None]:
        """One round trip: the versions, the key they make, and the value under it."""
        try:
            key, value = await self._read(keys=[EPOCH, version_key], args=[name])
        except (redis.RedisError, OSError) as exc:
            self._unavailable(exc)
            CACHE_REQUESTS.labels(self.service, cache, "error").inc()
            return None, None
        CACHE_REQUESTS.labels(self.service, cache, "hit" if value is not None else "miss").inc()
        return _text(key), value

    async def set(self, key: str | None, value: bytes) -> None:
        await self.set_many([(key, value)])

    async def set_many(self, entries: list[tuple[str | None, bytes]]) -> None:
        """Store fresh copies under the keys their lookups gave (one round trip)."""
        keyed = [(key, value) for key, value in entries if key is not None]
        if not keyed:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in keyed:
                    pipe.set(key, value, ex=self.ttl_s)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._unavailable(exc)

    async def _bump(self, *keys: str) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incr(key)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # Cannot invalidate: entries expire with their TTL. Said loudly, every time.
            log.error("cache_invalidation_failed", keys=keys, error=repr(exc))

    async def product_changed(self, product_id: uuid.UUID) -> None:
        """A product's fields changed: its own entry and every page."""
        await self._bump(_product_version_key(product_id), LIST_VERSION)

    async def stock_changed(self, product_id: uuid.UUID) -> None:
        """Only stock changed: pages do not show stock, so only the product's entry."""
        await self._bump(_product_version_key(product_id))

    async def everything_changed(self) -> None:
        await self._bump(EPOCH)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
