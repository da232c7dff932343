"""Carts in Redis: a hash productId -> quantity per user, priced with product_service's data.

The last product data seen is kept in Redis too, so when product_service is down the cart
still answers, marked stale; a product never seen before cannot be added then (503).

Reading or pricing a cart costs one HGETALL, one batched product lookup (or one MGET of the
last known data) and one pipelined write of what it saw; a change is one atomic script, so
concurrent adds of a product all count and none passes a limit. The rules are in domain.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import redis.asyncio as redis

from cart_service import domain
from cart_service.domain import ProductInfo
from cart_service.schemas import Cart
from shared_core.fields import MAX_CART_LINES, MAX_LINE_QUANTITY
from shared_runtime.peers import PeerClient, PeerResponse, PeerUnavailable

CART_TTL_S = 7 * 24 * 3600
# How long an erased account's cart stays refused: longer than a revoked token is taken
# anywhere (AUTH_STALE_S, 600 s, while user_service cannot answer).
ERASED_MARK_S = 900
PRODUCT_PEER = "product_service"

# Remove what an order took from the cart, once per event (atomic: dedupe and change).
_REMOVE_ORDERED = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
  local left = redis.call('HINCRBY', KEYS[2], ARGV[i], -tonumber(ARGV[i + 1]))
  if left <= 0 then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1
"""

# Change one line atomically, within the limits. KEYS: the cart, its currency, its owner's
# erasure mark. ARGV: product id, quantity, "add" or "set", max per line, max lines, available
# stock, TTL, the product's currency. Returns {outcome, current}: outcome the new quantity, or
# a negative refusal (domain.QUANTITY_LIMIT, CART_FULL, OUT_OF_STOCK, CURRENCY_MISMATCH,
# ACCOUNT_ERASED); current the quantity before. The cart's currency is kept beside it, so two
# products of two currencies added at once cannot both pass.
_CHANGE_LINE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {-5, 0} end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local others = redis.call('HLEN', KEYS[1])
if current > 0 then others = others - 1 end
local currency = redis.call('GET', KEYS[2])
if others > 0 and currency and currency ~= ARGV[8] then return {-4, current} end
local wanted = tonumber(ARGV[2])
if ARGV[3] == 'add' then wanted = wanted + current end
if wanted > tonumber(ARGV[4]) then return {-1, current} end
if current == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {-2, current} end
if wanted > tonumber(ARGV[6]) then return {-3, current} end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], ARGV[8], 'EX', ARGV[7])
return {wanted, current}
"""


def cart_key(user_id: uuid.UUID) -> str:
    return f"cart:{user_id}"


def currency_key(user_id: uuid.UUID) -> str:
    """The currency of the cart's lines (a cart is paid in one)."""
    return f"cart-currency:{user_id}"


def erased_key(user_id: uuid.UUID) -> str:
    return f"cart-erased:{user_id}"


def _snapshot_key(product_id: uuid.UUID) -> str:
    return f"cart:product:{product_id}"


def _product(data: dict[str, Any], stale: bool) -> ProductInfo:
    """A product as GET /products/lookup answers it (and as its last answer is kept)."""
    return ProductInfo(
        product_id=uuid.UUID(data["id"]),
        name=data["name"],
        price=Decimal(data["price"]),
        currency=data["currency"],
        active=bool(data["active"]),
        available_quantity=int(data["availableQuantity"]),
        stale=stale,
    )


class Carts:
    def __init__(self, client: redis.Redis, peers: PeerClient, ttl_s: int = CART_TTL_S) -> None:
        self.redis = client
        self.peers = peers
        self.ttl_s = ttl_s
        self._remove_ordered = client.register_script(_REMOVE_ORDERED)
        self._change = client.register_script(_CHANGE_LINE)

    async def products(self, product_ids: list[uuid.UUID]) -> dict[uuid.UUID, ProductInfo]:
        """Fresh from product_service in one call; when it is down, the last known (stale).

        A product that does not exist is absent; when product_service is down, one never seen
        before is a 503."""
        if not product_ids:
            return {}
        # One call for any cart within the limit (a cart older than it: one per 100 lines).
        chunks = [
            product_ids[i : i + MAX_CART_LINES] for i in range(0, len(product_ids), MAX_CART_LINES)
        ]
        try:
            responses = await asyncio.gather(*(self._lookup(chunk) for chunk in chunks))
        except PeerUnavailable:
            seen = await self.redis.mget([_snapshot_key(pid) for pid in product_ids])
            known = {
                pid: _product(json.loads(raw), stale=True)
                for pid, raw in zip(product_ids, seen, strict=True)
                if raw is not None
            }
            return domain.last_known(product_ids, known)
        items = [item for response in responses for item in response.json()["items"]]
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.set(_snapshot_key(uuid.UUID(item["id"])), json.dumps(item), ex=self.ttl_s)
            await pipe.execute()
        return {uuid.UUID(item["id"]): _product(item, stale=False) for item in items}

    async def _lookup(self, product_ids: list[uuid.UUID]) -> PeerResponse:
        query = [("ids", str(pid)) for pid in product_ids]
        response = await self.peers.get(PRODUCT_PEER, "/products/lookup", query)
        if response.status_code != 200:
            raise PeerUnavailable(PRODUCT_PEER, f"status {response.status_code}")
        return response

    async def _quantities(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        raw = await self.redis.hgetall(cart_key(user_id))
        return {
            uuid.UUID(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()
        }

    async def get(
        self, user_id: uuid.UUID, known: dict[uuid.UUID, ProductInfo] | None = None
    ) -> Cart:
        """The cart priced now; ``known`` is product data this request already fetched."""
        known = known or {}
        quantities = await self._quantities(user_id)
        products = known | await self.products([p for p in quantities if p not in known])
        gone = domain.gone_lines(quantities, products)
        if gone:
            await self.redis.hdel(cart_key(user_id), *(str(pid) for pid in gone))
        return domain.price_cart(quantities, products)

    async def _change_line(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int, *, add: bool
    ) -> dict[uuid.UUID, ProductInfo]:
        """Add ``quantity`` to the line (or set it), checked against the product, the cart's
        currency and the limits; returns the product data it was checked against."""
        in_cart = list(await self._quantities(user_id))
        products = await self.products(list(dict.fromkeys([product_id, *in_cart])))
        info = domain.check_change(product_id, products, in_cart)
        outcome, current = await self._change(
            keys=[cart_key(user_id), currency_key(user_id), erased_key(user_id)],
            args=[
                str(product_id),
                quantity,
                "add" if add else "set",
                MAX_LINE_QUANTITY,
                MAX_CART_LINES,
                info.available_quantity,
                self.ttl_s,
                info.currency,
            ],
        )
        domain.check_outcome(outcome, current, info)
        return products

    async def add(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
    ) -> dict[uuid.UUID, ProductInfo]:
        """Add to the line; returns the product data it was checked against."""
        return await self._change_line(user_id, product_id, quantity, add=True)

    async def set(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
    ) -> dict[uuid.UUID, ProductInfo]:
        return await self._change_line(user_id, product_id, quantity, add=False)

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> None:
        if not await self.redis.hdel(cart_key(user_id), str(product_id)):
            raise domain.NotInCart("This product is not in the cart.")

    async def clear(self, user_id: uuid.UUID) -> None:
        await self.redis.delete(cart_key(user_id), currency_key(user_id))

    async def erase(self, user_id: uuid.UUID) -> None:
        """The account is gone: its cart, and for as long as a token of it may still be taken
        somewhere (``ERASED_MARK_S``), no new one."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(cart_key(user_id), currency_key(user_id))
            pipe.set(erased_key(user_id), "1", ex=ERASED_MARK_S)
            await pipe.execute()

    async def remove_ordered(
        self, event_id: uuid.UUID, user_id: uuid.UUID, lines: list[tuple[uuid.UUID, int]]
    ) -> bool:
        """Take an order's lines out of the cart, once per event id; False for a duplicate."""
        args: list[Any] = [self.ttl_s]
        for product_id, quantity in lines:
            args += [str(product_id), quantity]
        done = await self._remove_ordered(
            keys=[f"cart:order-events:{event_id}", cart_key(user_id)], args=args
        )
        return bool(done)
