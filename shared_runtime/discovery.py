"""Finding peers: static URLs from settings, or Consul when CONSUL_HTTP_ADDR is set.

With Consul (py-consul's asyncio client), each service instance registers on start under a
DNS-friendly name (``product_service`` -> ``product-service``) with an id unique to the
instance, its internal port (the one peers call, shared_runtime.ports) and an HTTP check on
``/health`` there, and deregisters on stop. Peers are looked up in
Consul's health API (passing instances only), cached for a few seconds, and balanced
round-robin. If Consul cannot be reached, the last known instances (or the static URL) serve.

Every request carries the instance's ACL token (``X-Consul-Token``) when it has one. A Consul
that refuses the registration (an unknown token, or one without ``service:write`` on the
service) fails the start, as an unreachable one does: an instance nobody can find must not
run. A lookup Consul refuses is a lookup that failed: the last known instances serve.
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import structlog
from consul import Check
from consul.aio import Consul

log = structlog.get_logger(__name__)


def consul_name(service: str) -> str:
    return service.replace("_", "-")


def advertise_address() -> str:
    """This instance's address as other instances reach it (the container's IP)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


class Discovery:
    def __init__(
        self,
        static: dict[str, str],
        consul_addr: str | None = None,
        *,
        token: str | None = None,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self.static = {name: url.rstrip("/") for name, url in static.items()}
        self.cache_ttl_s = cache_ttl_s
        self.consul: Consul | None = None
        if consul_addr:
            parts = urlsplit(consul_addr if "://" in consul_addr else f"http://{consul_addr}")
            self.consul = Consul(
                host=parts.hostname,
                port=parts.port or 8500,
                scheme=parts.scheme or "http",
                token=token,
            )
            # py-consul prefers CONSUL_HTTP_TOKEN from the environment to its token argument.
            # A service's settings read that same variable, but the token given here is the one
            # meant, also where the environment holds another (a test, a second instance).
            self.consul.token = token
        self._cache: dict[str, tuple[float, list[str], Iterator[str]]] = {}
        self.service_id: str | None = None

    async def register(
        self, service: str, address: str, port: int, tags: list[str] | None = None
    ) -> None:
        if self.consul is None:
            return
        self.service_id = f"{consul_name(service)}-{address}-{port}-{uuid.uuid4().hex[:6]}"
        check = Check.http(
            f"http://{address}:{port}/health", interval="10s", timeout="2s", deregister="1m"
        )
        await self.consul.agent.service.register(
            consul_name(service),
            service_id=self.service_id,
            address=address,
            port=port,
            tags=["ecommerce", "metrics", *(tags or [])],
            check=check,
        )
        log.info("consul_registered", service_id=self.service_id)

    async def deregister(self) -> None:
        if self.consul is None or self.service_id is None:
            return
        try:
            await self.consul.agent.service.deregister(self.service_id)
        except Exception as exc:  # the agent may already be gone; its check will expire us
            log.warning("consul_deregister_failed", error=repr(exc))

    async def close(self) -> None:
        if self.consul is not None:
            await self.consul.close()

    async def resolve(self, peer: str) -> str:
        """A base URL for one instance of ``peer``, round-robin among the passing ones."""
        if self.consul is None:
            return self._static(peer)
        now = time.monotonic()
        cached = self._cache.get(peer)
        if cached is None or now - cached[0] > self.cache_ttl_s:
            urls = await self._lookup(peer)
            if urls:
                cached = (now, urls, itertools.cycle(urls))
                self._cache[peer] = cached
            elif cached is None:
                return self._static(peer)
        return next(cached[2])

    async def _lookup(self, peer: str) -> list[str]:
        try:
            _, nodes = await self.consul.health.service(consul_name(peer), passing=True)  # type: ignore[union-attr]
        except Exception as exc:
            log.warning("consul_lookup_failed", peer=peer, error=repr(exc))
            return []
        return sorted(_url(node) for node in nodes)

    def _static(self, peer: str) -> str:
        try:
            return self.static[peer]
        except KeyError:
            raise LookupError(f"no address for {peer}") from None


def _url(node: dict[str, Any]) -> str:
    service = node["Service"]
    address = service.get("Address") or node["Node"]["Address"]
    return f"http://{address}:{service['Port']}"
