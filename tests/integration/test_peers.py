"""The peer client against a real HTTP peer: retries, timeouts, the breaker, the request id."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from shared_runtime.discovery import Discovery
from shared_runtime.peers import PeerClient, PeerUnavailable
from tests.fake_api import FakeApi, Reply


class Peer(FakeApi):
    """Answers from a script: a list of (status, payload) or "slow" per call, then 200."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list[Any] = []

    def answer(self, request: dict[str, Any]) -> Reply:
        step = self.script.pop(0) if self.script else (200, {"ok": True})
        if step == "slow":
            time.sleep(0.5)
            return 200, {"ok": "late"}, {}
        status, payload = step
        return status, payload, {}


@pytest.fixture
def peer() -> Iterator[Peer]:
    fake = Peer()
    yield fake
    fake.close()


@pytest.fixture
async def client(peer: Peer) -> AsyncIterator[PeerClient]:
    discovery = Discovery({"thing": peer.url}, None)
    peers = PeerClient(
        service="test",
        discovery=discovery,
        timeout_s=0.2,
        attempts=3,
        breaker_threshold=3,
        breaker_reset_s=30,
    )
    yield peers
    await peers.close()
    await discovery.close()


async def test_a_get_is_retried_through_server_errors_and_carries_the_request_id(peer, client):
    peer.script = [(503, {"error": "busy"}), (500, None), (200, {"n": 1})]
    with structlog.contextvars.bound_contextvars(request_id="req-123"):
        response = await client.get("thing", "/things/1", params={"q": "a b"})
    assert response.status_code == 200
    assert response.json() == {"n": 1}
    assert [r["path"] for r in peer.requests] == ["/things/1?q=a+b"] * 3
    assert {r["headers"]["X-Request-ID"] for r in peer.requests} == {"req-123"}


async def test_a_write_is_sent_once_and_a_4xx_is_the_peers_answer(peer, client):
    peer.script = [(500, {"error": "boom"})]
    with pytest.raises(PeerUnavailable, match="HTTP 500"):
        await client.request("POST", "thing", "/things", json={"name": "x"})
    assert len(peer.requests) == 1
    assert peer.requests[0]["json"] == {"name": "x"}

    peer.script = [(404, {"error": "none"})] * 5
    for _ in range(5):  # a 4xx never trips the breaker
        assert (await client.get("thing", "/things/2")).status_code == 404
    assert await client.breaker_state("thing") == "closed"


async def test_a_slow_peer_times_out_and_the_breaker_opens(peer, client):
    peer.script = ["slow"] * 6
    with pytest.raises(PeerUnavailable):
        await client.get("thing", "/things/3")
    assert len(peer.requests) == 3  # three attempts; the breaker opened at the third failure
    with pytest.raises(PeerUnavailable, match="circuit breaker open"):
        await client.get("thing", "/things/3")
    assert len(peer.requests) == 3  # fails fast, without calling


async def test_an_unreachable_peer_is_unavailable():
    discovery = Discovery({"thing": "http://127.0.0.1:9"}, None)
    peers = PeerClient(service="test", discovery=discovery, timeout_s=0.5, attempts=2)
    try:
        with pytest.raises(PeerUnavailable) as raised:
            await peers.get("thing", "/x")
        assert raised.value.peer == "thing"
        with pytest.raises(PeerUnavailable, match="no address known"):
            await peers.get("nobody", "/x")
    finally:
        await peers.close()
        await discovery.close()
