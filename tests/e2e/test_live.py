"""An order, live, through the gateway (GET /orders/{id}/events, Server-Sent Events): the saga's
steps pushed as they commit, to the order's customer alone, resumed after a reconnect."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from scripts.stack import running_pid
from shared_runtime.auth import Claims, create_access_token
from tests.e2e.conftest import DB_SUFFIX, RUN_DIR, internal_url, stack_command
from tests.e2e.test_orders import new_product, order, settled, shopper
from tests.support import PG, error_of, eventually


@dataclass
class Event:
    id: int | None  # none on the last, an ``error``
    type: str
    order: dict[str, Any]  # on an ``error`` event, its body: {"error": {...}}


class Stream:
    """One open event stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 15.0) -> Event:  # noqa: ASYNC109 - a deadline
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if not line:
                    if "data" in fields:
                        event_id = int(fields["id"]) if "id" in fields else None
                        return Event(event_id, fields["event"], json.loads(fields["data"]))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def until(self, status: str, timeout: float = 15.0) -> list[Event]:  # noqa: ASYNC109
        """Every event up to the first with the order in ``status``."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1].order["status"] != status:
            seen.append(await self.next(max(0.1, deadline - time.monotonic())))
        return seen


@asynccontextmanager
async def opened(
    gateway: httpx.AsyncClient, user: dict, order_id: str, last_event_id: int | None = None
) -> AsyncIterator[Stream]:
    headers = dict(user)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    request = gateway.build_request("GET", f"/orders/{order_id}/events", headers=headers)
    response = await gateway.send(request, stream=True)
    try:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)
    finally:
        await response.aclose()


async def new_order(
    gateway: httpx.AsyncClient, admin_token: str, payment_method: str = "pm_card_visa"
) -> tuple[dict, dict, dict[str, Any]]:
    """An administrator's headers, a new shopper's, and the shopper's order of one product."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    user = await shopper(gateway, phone=None)
    return admin, user, await order(gateway, user, [(product["id"], 1)], payment_method)


async def ship(gateway: httpx.AsyncClient, admin: dict, order_id: str, tracking: str) -> None:
    shipped = await gateway.post(
        f"/orders/{order_id}/ship", json={"trackingNumber": tracking}, headers=admin
    )
    assert shipped.status_code == 200, shipped.text


async def test_the_saga_is_pushed_as_it_happens(gateway, admin_token):
    admin, user, placed = await new_order(gateway, admin_token)
    async with opened(gateway, user, placed["id"]) as stream:
        events = await stream.until("CONFIRMED")
        assert all(e.type == "order" and e.order["id"] == placed["id"] for e in events)
        assert [e.id for e in events] == sorted({e.id for e in events})  # each change once
        steps = {step["event"] for step in events[-1].order["timeline"]}
        assert {"OrderCreated", "StockReserved", "OrderConfirmed"} <= steps

        await ship(gateway, admin, placed["id"], "DHL-LIVE-1")
        shipped = (await stream.until("SHIPPED"))[-1]
        assert shipped.order["trackingNumber"] == "DHL-LIVE-1"
        assert shipped.id > events[-1].id
        assert stream.response.headers["cache-control"] == "no-store"


async def test_a_declined_card_is_pushed_with_its_reason(gateway, admin_token):
    _, user, placed = await new_order(gateway, admin_token, "pm_card_chargeDeclined")
    async with opened(gateway, user, placed["id"]) as stream:
        cancelled = (await stream.until("CANCELLED"))[-1]
    assert "declined" in cancelled.order["cancelReason"].lower()


async def test_a_customer_can_follow_only_their_own_orders(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    alice, bob = await shopper(gateway, phone=None), await shopper(gateway, phone=None)
    alices = await order(gateway, alice, [(product["id"], 1)])
    bobs = await order(gateway, bob, [(product["id"], 1)])

    refused = await gateway.get(f"/orders/{alices['id']}/events", headers=bob)
    assert refused.status_code == 404 and error_of(refused)["code"] == "order_not_found"
    anonymous = await gateway.get(f"/orders/{alices['id']}/events")
    assert anonymous.status_code == 401

    async with opened(gateway, bob, bobs["id"]) as stream:
        await stream.until("CONFIRMED")
        await settled(gateway, alice, alices["id"])
        await ship(gateway, admin, alices["id"], "DHL-ALICE-1")  # Alice's order changes
        await ship(gateway, admin, bobs["id"], "DHL-BOB-1")
        events = await stream.until("SHIPPED")
        assert {e.order["id"] for e in events} == {bobs["id"]}  # never Alice's
        assert events[-1].order["trackingNumber"] == "DHL-BOB-1"


async def test_a_stream_reopened_after_a_drop_misses_no_change(gateway, admin_token):
    admin, user, placed = await new_order(gateway, admin_token)
    async with opened(gateway, user, placed["id"]) as stream:
        first = await stream.next()
    # Dropped: the order is confirmed and shipped while nobody listens.
    await settled(gateway, user, placed["id"])
    await ship(gateway, admin, placed["id"], "DHL-RESUME-1")
    async with opened(gateway, user, placed["id"], last_event_id=first.id) as stream:
        caught_up = await stream.next()
    assert caught_up.order["status"] == "SHIPPED" and caught_up.id > first.id
    timeline = {step["event"] for step in caught_up.order["timeline"]}
    assert {"OrderConfirmed", "OrderShipped"} <= timeline


async def test_a_stream_lives_through_a_lost_database_connection(gateway, admin_token):
    """The service's LISTEN connection is cut (as a database restart would): it listens again
    and wakes every stream, so a change committed meanwhile still reaches the page."""
    admin, user, placed = await new_order(gateway, admin_token)
    async with opened(gateway, user, placed["id"]) as stream:
        await stream.until("CONFIRMED")
        conn = await asyncpg.connect(f"{PG.replace('+asyncpg', '')}/orders{DB_SUFFIX}")
        try:
            cut = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()"
                " AND query ILIKE 'LISTEN%'",
                f"orders{DB_SUFFIX}",
            )
        finally:
            await conn.close()
        assert cut >= 1
        await ship(gateway, admin, placed["id"], "DHL-CUT-1")
        shipped = (await stream.until("SHIPPED"))[-1]
        assert shipped.order["trackingNumber"] == "DHL-CUT-1"


async def test_a_customer_may_hold_five_streams_at_once(gateway, admin_token):
    _, user, placed = await new_order(gateway, admin_token)
    streams = [opened(gateway, user, placed["id"]) for _ in range(5)]
    # Each Stream is kept: one dropped would close its connection.
    held = [await stream.__aenter__() for stream in streams]
    for each in held:
        await each.next()
    async with httpx.AsyncClient() as direct:
        metrics = (await direct.get(f"{internal_url('order_service')}/metrics")).text
    assert re.search(r"^order_streams_open ([5-9]|\d\d)\.0$", metrics, re.M), metrics[-2000:]
    refused = await gateway.get(f"/orders/{placed['id']}/events", headers=user)
    assert refused.status_code == 429 and error_of(refused)["code"] == "too_many_streams"
    held.pop()
    await streams.pop().__aexit__(None, None, None)

    async def sixth() -> httpx.Response:
        request = gateway.build_request("GET", f"/orders/{placed['id']}/events", headers=user)
        response = await gateway.send(request, stream=True)
        await response.aclose()
        return response

    # Closing one frees its place once the service sees the client gone.
    await eventually(sixth, until=lambda r: r.status_code == 200, what="a free stream")
    for stream in streams:
        await stream.__aexit__(None, None, None)


async def test_bad_stream_requests_are_refused_clearly(gateway, customer):
    order_id = uuid.uuid4()
    for headers, status in [({"Last-Event-ID": "not-a-number"}, 422), ({}, 404)]:
        response = await gateway.get(f"/orders/{order_id}/events", headers=customer | headers)
        assert response.status_code == status, response.text
        error_of(response)
    response = await gateway.get("/orders/not-an-id/events", headers=customer)
    assert response.status_code == 422 and error_of(response)


async def test_a_stopping_service_ends_its_streams_and_they_resume(gateway, admin_token):
    """A deploy or a scale-down stops order_service: its streams end at once (not after the
    server's graceful timeout), and the page reconnects, missing nothing."""
    admin, user, placed = await new_order(gateway, admin_token)
    async with opened(gateway, user, placed["id"]) as stream:
        confirmed = (await stream.until("CONFIRMED"))[-1]
        pid = running_pid(RUN_DIR / "order_service.pid")
        assert pid
        os.kill(pid, signal.SIGTERM)
        with pytest.raises(AssertionError, match="the stream ended"):
            await stream.next(timeout=8)  # the server's graceful timeout is 10 s
    await asyncio.to_thread(stack_command, "start")
    await ship(gateway, admin, placed["id"], "DHL-AFTER-1")
    async with opened(gateway, user, placed["id"], last_event_id=confirmed.id) as stream:
        shipped = await stream.next()
    assert shipped.order["trackingNumber"] == "DHL-AFTER-1"


async def account(gateway: httpx.AsyncClient) -> tuple[dict, str, str]:
    """A shopper's headers, e-mail and id (tests/e2e/test_orders.shopper's password)."""
    user = await shopper(gateway, phone=None)
    me = (await gateway.get("/users/me", headers=user)).json()
    return user, me["email"], me["id"]


async def revoke(gateway: httpx.AsyncClient, admin: dict, user: dict, how: str, user_id: str):
    if how == "password":
        answer = await gateway.put(
            "/users/me/password",
            json={"currentPassword": "correct-horse", "newPassword": "a-new-horse"},
            headers=user,
        )
    elif how == "deactivation":
        answer = await gateway.post(f"/users/{user_id}/deactivate", headers=admin)
    else:
        answer = await gateway.request(
            "DELETE", "/users/me", json={"password": "correct-horse"}, headers=user
        )
    assert answer.status_code in (200, 204), answer.text


@pytest.mark.parametrize("how", ["password", "deactivation", "deletion"])
async def test_a_stream_ends_within_seconds_once_its_token_is_revoked(gateway, admin_token, how):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    user, _, user_id = await account(gateway)
    placed = await order(gateway, user, [(product["id"], 1)])
    async with opened(gateway, user, placed["id"]) as stream:
        await stream.until("CONFIRMED")
        await revoke(gateway, admin, user, how, user_id)
        revoked_at = time.monotonic()
        last = await stream.next(timeout=5)
        while last.type == "order":  # a change that committed just before
            last = await stream.next(timeout=5 - (time.monotonic() - revoked_at))
        assert time.monotonic() - revoked_at < 5
        assert last.type == "error" and last.id is None
        assert last.order["error"]["code"] == "token_revoked"
        with pytest.raises(AssertionError, match="the stream ended"):
            await stream.next(timeout=2)
    # The client's reconnect is refused.
    again = await gateway.get(f"/orders/{placed['id']}/events", headers=user)
    assert again.status_code == 401, (how, again.text)
    assert error_of(again)["code"] == "token_revoked"


async def test_a_stream_ends_when_its_token_expires(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    user, email, user_id = await account(gateway)
    placed = await order(gateway, user, [(product["id"], 1)])
    await settled(gateway, user, placed["id"])
    claims = Claims(sub=uuid.UUID(user_id), email=email, full_name="Sam Shopper")
    short = {"Authorization": f"Bearer {create_access_token(claims, os.environ['JWT_SECRET'], 3)}"}
    async with opened(gateway, short, placed["id"]) as stream:
        assert (await stream.next()).type == "order"
        ended = await stream.next(timeout=5)
    assert ended.type == "error" and ended.order["error"]["code"] == "token_expired"
    again = await gateway.get(f"/orders/{placed['id']}/events", headers=short)
    assert again.status_code == 401


async def test_streams_opened_in_parallel_pass_no_limit(gateway, admin_token):
    _, user, placed = await new_order(gateway, admin_token)
    url = f"/orders/{placed['id']}/events"
    answers = await asyncio.gather(
        *(
            gateway.send(gateway.build_request("GET", url, headers=user), stream=True)
            for _ in range(12)
        )
    )
    try:
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * 5 + [429] * 7, statuses
    finally:
        for answer in answers:
            await answer.aclose()
