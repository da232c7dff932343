"""Discovery with the real py-consul client against a local server that answers like Consul."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from consul import ACLPermissionDenied

from shared_runtime.discovery import Discovery
from tests.fake_api import FakeApi, Reply

# Consul's own AccessorID for requests that carry no token.
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"


def _keys_lower(value: Any) -> Any:
    """Consul reads JSON field names case-insensitively; the fake compares them lower-cased."""
    if isinstance(value, dict):
        return {k.lower(): _keys_lower(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_lower(v) for v in value]
    return value


@dataclass(frozen=True)
class AclToken:
    """What a token's policies allow, on service names (service:write implies read)."""

    write: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    accessor_id: str = ANONYMOUS_ACCESSOR

    def may_read(self, service: str) -> bool:
        return service in self.read or service in self.write


class FakeConsul(FakeApi):
    """The agent and health endpoints of Consul's HTTP API, as documented, with ACLs on and
    the default policy deny: a request's X-Consul-Token names its token (none: the anonymous
    token, which may do nothing); a token Consul does not know is refused with 403 "ACL not
    found"; a write the token may not make is refused with 403 "Permission denied"; a read
    is filtered to what the token may see (X-Consul-Results-Filtered-By-ACLs)."""

    def __init__(self, tokens: dict[str, AclToken]) -> None:
        super().__init__()
        self.tokens = tokens
        self.services: dict[str, dict[str, Any]] = {}
        self.critical: set[str] = set()

    def answer(self, request: dict[str, Any]) -> Reply:
        secret = request["headers"].get("X-Consul-Token")
        token = self.tokens.get(secret) if secret else AclToken()
        if token is None:
            return 403, "ACL not found", {}
        url = urlsplit(request["path"])
        if request["method"] == "PUT" and url.path == "/v1/agent/service/register":
            body = _keys_lower(request["json"])
            if body["name"] not in token.write:
                return 403, _denied(token, "service:write", body["name"]), {}
            self.services[body["id"]] = body
            return 200, None, {}
        if request["method"] == "PUT" and url.path.startswith("/v1/agent/service/deregister/"):
            service = self.services.get(url.path.rsplit("/", 1)[1])
            if service is None:
                return 404, "Unknown service ID", {}
            if service["name"] not in token.write:
                return 403, _denied(token, "service:write", service["name"]), {}
            del self.services[service["id"]]
            return 200, None, {}
        if request["method"] == "GET" and url.path.startswith("/v1/health/service/"):
            name = url.path.rsplit("/", 1)[1]
            headers = {"X-Consul-Index": "42"}
            if not token.may_read(name):
                headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
                return 200, [], headers
            passing = "passing" in parse_qs(url.query, keep_blank_values=True)
            entries = [
                self._entry(s)
                for s in self.services.values()
                if s["name"] == name and not (passing and s["id"] in self.critical)
            ]
            return 200, entries, headers
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


def _denied(token: AclToken, permission: str, service: str) -> str:
    """Consul's words when a token lacks a permission."""
    if token.accessor_id == ANONYMOUS_ACCESSOR:
        return (
            f"Permission denied: anonymous token lacks permission '{permission}' on "
            f'"{service}". The anonymous token is used implicitly when a request does not '
            "specify a token."
        )
    return (
        f"Permission denied: token with AccessorID '{token.accessor_id}' lacks permission "
        f"'{permission}' on \"{service}\""
    )


def service_token(service: str, *peers: str) -> AclToken:
    """A token as docker-compose gives each service: it registers itself and reads its peers."""
    return AclToken(frozenset({service}), frozenset(peers), str(uuid.uuid4()))


PRODUCT_TOKEN = str(uuid.uuid4())
CART_TOKEN = str(uuid.uuid4())
TOKENS = {
    PRODUCT_TOKEN: service_token("product-service"),
    CART_TOKEN: service_token("cart-service", "product-service"),
}


def tokens_sent(consul: FakeConsul) -> set[str | None]:
    return {request["headers"].get("X-Consul-Token") for request in consul.requests}


@pytest.fixture
def consul() -> Iterator[FakeConsul]:
    fake = FakeConsul(TOKENS)
    yield fake
    fake.close()


async def test_register_sends_name_id_address_port_tags_and_an_http_check(consul):
    discovery = Discovery({}, consul.url, token=PRODUCT_TOKEN)
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
        assert tokens_sent(consul) == {PRODUCT_TOKEN}
    finally:
        await discovery.close()


async def test_two_instances_get_distinct_ids(consul):
    first = Discovery({}, consul.url, token=CART_TOKEN)
    second = Discovery({}, consul.url, token=CART_TOKEN)
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
        instance = Discovery({}, consul.url, token=PRODUCT_TOKEN)
        await instance.register("product_service", f"10.0.0.{n + 1}", 8000)
        instances.append(instance)
    consul.critical.add(instances[2].service_id or "")
    client = Discovery(
        {"product_service": "http://static:1"}, consul.url, token=CART_TOKEN, cache_ttl_s=60
    )
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
        assert lookups[0]["headers"]["X-Consul-Token"] == CART_TOKEN
    finally:
        for instance in [*instances, client]:
            await instance.close()


async def test_consul_unreachable_falls_back_to_static_then_last_known(consul):
    url = consul.url
    consul.close()
    client = Discovery(
        {"product_service": "http://static:5002"}, url, token=CART_TOKEN, cache_ttl_s=0
    )
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


@pytest.mark.parametrize(
    ("token", "refusal"),
    [
        (None, "anonymous token lacks permission 'service:write'"),
        (str(uuid.uuid4()), "ACL not found"),
        (CART_TOKEN, "lacks permission 'service:write' on \"product-service\""),
    ],
    ids=["no token", "an unknown token", "another service's token"],
)
async def test_a_refused_registration_raises_with_consuls_reason(consul, token, refusal):
    # Raised out of the app's lifespan: the instance does not start unfindable.
    discovery = Discovery({}, consul.url, token=token)
    try:
        with pytest.raises(ACLPermissionDenied, match=re.escape(refusal)):
            await discovery.register("product_service", "10.1.2.3", 8000)
        assert consul.services == {}
        assert tokens_sent(consul) == {token}
    finally:
        await discovery.close()


async def test_a_refused_lookup_serves_the_static_address_as_when_consul_is_away(consul):
    product = Discovery({}, consul.url, token=PRODUCT_TOKEN)
    await product.register("product_service", "10.0.0.1", 8000)
    static = {"product_service": "http://static:5002"}
    # Refused outright (403), and filtered to nothing (the anonymous token may read nothing).
    strangers = [Discovery(static, consul.url, token=t) for t in (str(uuid.uuid4()), None)]
    try:
        for client in strangers:
            assert await client.resolve("product_service") == "http://static:5002"
        allowed = Discovery(static, consul.url, token=CART_TOKEN)
        strangers.append(allowed)
        assert await allowed.resolve("product_service") == "http://10.0.0.1:8000"
    finally:
        for client in [product, *strangers]:
            await client.close()


async def test_the_token_given_is_sent_whatever_the_environment_holds(consul, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", CART_TOKEN)
    discovery = Discovery({}, consul.url, token=PRODUCT_TOKEN)
    try:
        await discovery.register("product_service", "10.1.2.3", 8000)
        assert tokens_sent(consul) == {PRODUCT_TOKEN}
    finally:
        await discovery.close()
