"""Discovery with the real py-consul client against a local server that answers like Consul."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared_runtime.discovery import Discovery
from tests.fake_api import FakeApi, Reply


def _keys_lower(value: Any) -> Any:
    """Consul reads JSON field names case-insensitively; the fake compares them lower-cased."""
    if isinstance(value, dict):
        return {k.lower(): _keys_lower(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_lower(v) for v in value]
    return value


class FakeConsul(FakeApi):
    """The agent and health endpoints of Consul's HTTP API, as documented."""

    def __init__(self) -> None:
        super().__init__()
        self.services: dict[str, dict[str, Any]] = {}
        self.critical: set[str] = set()

    def answer(self, request: dict[str, Any]) -> Reply:
        url = urlsplit(request["path"])
        if request["method"] == "PUT" and url.path == "/v1/agent/service/register":
            body = _keys_lower(request["json"])
            self.services[body["id"]] = body
            return 200, None, {}
        if request["method"] == "PUT" and url.path.startswith("/v1/agent/service/deregister/"):
            service_id = url.path.rsplit("/", 1)[1]
            if self.services.pop(service_id, None) is None:
                return 404, None, {}
            return 200, None, {}
        if request["method"] == "GET" and url.path.startswith("/v1/health/service/"):
            name = url.path.rsplit("/", 1)[1]
            passing = "passing" in parse_qs(url.query, keep_blank_values=True)
            entries = [
                self._entry(s)
                for s in self.services.values()
                if s["name"] == name and not (passing and s["id"] in self.critical)
            ]
            return 200, entries, {"X-Consul-Index": "42"}
        return 404, None, {}

    def _entry(self, service: dict[str, Any]) -> dict[str, Any]:
        status = "critical" if service["id"] in self.critical else "passing"
        return {
            "Node": {"ID": str(uuid.uuid4()), "Node": "node-1", "Address": "10.0.0.1"},
            "Service": {
                "ID": service["id"],
                "Service": service["name"],
                "Tags": service.get("tags", []),
                "Address": service["address"],
                "Port": service["port"],
            },
            "Checks": [{"CheckID": f"service:{service['id']}", "Status": status}],
        }


@pytest.fixture
def consul() -> Iterator[FakeConsul]:
    fake = FakeConsul()
    yield fake
    fake.close()


async def test_register_sends_name_id_address_port_tags_and_an_http_check(consul):
    discovery = Discovery({}, consul.url)
    try:
        await discovery.register("product_service", "10.1.2.3", 8000, tags=["v1"])
        [request] = consul.requests
        assert (request["method"], request["path"]) == ("PUT", "/v1/agent/service/register")
        body = _keys_lower(request["json"])
        assert body["name"] == "product-service"
        assert body["id"].startswith("product-service-10.1.2.3-8000-")
        assert (body["address"], body["port"]) == ("10.1.2.3", 8000)
        assert {"ecommerce", "metrics", "v1"} <= set(body["tags"])
        [check] = body["checks"]
        assert check == {
            "http": "http://10.1.2.3:8000/health",
            "interval": "10s",
            "timeout": "2s",
            "deregistercriticalserviceafter": "1m",
        }
        await discovery.deregister()
        assert consul.requests[-1]["method"] == "PUT"
        assert consul.requests[-1]["path"] == f"/v1/agent/service/deregister/{body['id']}"
        assert consul.services == {}
    finally:
        await discovery.close()


async def test_two_instances_get_distinct_ids(consul):
    first, second = Discovery({}, consul.url), Discovery({}, consul.url)
    try:
        await first.register("cart_service", "10.0.0.5", 8000)
        await second.register("cart_service", "10.0.0.5", 8000)
        assert len(consul.services) == 2
    finally:
        await first.close()
        await second.close()


async def test_lookup_asks_for_passing_instances_and_balances_round_robin(consul):
    instances = []
    for n in range(3):
        instance = Discovery({}, consul.url)
        await instance.register("product_service", f"10.0.0.{n + 1}", 8000)
        instances.append(instance)
    consul.critical.add(instances[2].service_id or "")
    client = Discovery({"product_service": "http://static:1"}, consul.url, cache_ttl_s=60)
    try:
        picks = [await client.resolve("product_service") for _ in range(4)]
        assert picks == [
            "http://10.0.0.1:8000",
            "http://10.0.0.2:8000",
            "http://10.0.0.1:8000",
            "http://10.0.0.2:8000",
        ]
        lookups = [r for r in consul.requests if r["method"] == "GET"]
        assert len(lookups) == 1  # cached within its TTL
        query = parse_qs(urlsplit(lookups[0]["path"]).query, keep_blank_values=True)
        assert urlsplit(lookups[0]["path"]).path == "/v1/health/service/product-service"
        assert "passing" in query
    finally:
        for instance in [*instances, client]:
            await instance.close()


async def test_consul_unreachable_falls_back_to_static_then_last_known(consul):
    url = consul.url
    consul.close()
    client = Discovery({"product_service": "http://static:5002"}, url, cache_ttl_s=0)
    try:
        assert await client.resolve("product_service") == "http://static:5002"
        with pytest.raises(LookupError):
            await client.resolve("unknown_service")
    finally:
        await client.close()


async def test_without_consul_static_addresses_serve():
    client = Discovery({"cart_service": "http://127.0.0.1:5003/"})
    assert await client.resolve("cart_service") == "http://127.0.0.1:5003"
    await client.register("cart_service", "127.0.0.1", 5003)  # a no-op
    assert client.service_id is None
    await client.close()
