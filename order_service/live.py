"""Live order changes: ``GET /orders/{id}/events``, a Server-Sent Events stream of one order.

Every step added to an order's timeline notifies the PostgreSQL channel ``order_changes``
with the order's id (a trigger, migration 0004), delivered when its transaction commits. Each
process listens on one connection (``OrderChanges``) and wakes the streams open on that order,
in any replica; a woken stream reads the order once and sends it if its timeline grew. No
stream polls the database: it reads when a saga step committed, and once at its start.

An event is the whole order, as ``GET /orders/{id}`` answers it (status, reason, tracking
number, timeline), and its id is the id of the order's newest timeline step: a client that
reconnects with ``Last-Event-ID`` is sent the order again only if it changed meanwhile, so a
dropped stream misses no change. Comments (``: keep-alive``) keep idle proxies from closing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from prometheus_client import Gauge

from shared_core.background import BackgroundTask
from shared_runtime.errors import ApiError

log = structlog.get_logger(__name__)
CHANNEL = "order_changes"
PING_EVERY_S = 10.0  # how soon a connection lost without a word (a network cut) is noticed
RECONNECT_AFTER_S = 1.0
STREAMS_OPEN = Gauge("order_streams_open", "Live order streams open in this process.")


class Watch:
    """One open stream: woken whenever its order changed, or its account did."""

    def __init__(self, order_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.woken = asyncio.Event()
        self.account_changed = False
        self.closed = False

    def take_account_changed(self) -> bool:
        changed, self.account_changed = self.account_changed, False
        return changed


class OrderChanges(BackgroundTask):
    """One LISTEN connection per process, and the streams waiting on each order.

    After the connection was lost (a database restart), it reconnects and wakes every stream:
    a change may have committed while nobody listened. A notification ``user:<id>`` (sent when
    an account's tokens were revoked) wakes that customer's streams to check their token."""

    task_name = "order-changes-listener"

    def __init__(self, dsn: str, streams_per_user: int, streams_in_all: int) -> None:
        self.dsn = dsn
        self.streams_per_user = streams_per_user
        self.streams_in_all = streams_in_all
        self._by_order: dict[uuid.UUID, set[Watch]] = defaultdict(set)
        self._by_user: dict[uuid.UUID, set[Watch]] = defaultdict(set)
        self.listening = asyncio.Event()

    def open(self, order_id: uuid.UUID, user_id: uuid.UUID) -> Watch:
        """Admit a stream, or refuse it (429) when the customer has ``streams_per_user`` open
        in this process or the process ``streams_in_all``. Checked and counted in one step
        (no await between), so streams opened in parallel cannot pass the limits; the caller
        closes it (``close``) however the stream ends."""
        if len(self._by_user.get(user_id, ())) >= self.streams_per_user:
            raise ApiError(
                429,
                "too_many_streams",
                f"At most {self.streams_per_user} order streams may be open at once; "
                "close one first.",
            )
        if self.open_streams() >= self.streams_in_all:
            raise ApiError(
                429,
                "too_many_streams",
                "This server follows as many orders as it can; try again shortly.",
            )
        watch = Watch(order_id, user_id)
        self._by_order[order_id].add(watch)
        self._by_user[user_id].add(watch)
        STREAMS_OPEN.inc()
        return watch

    def close(self, watch: Watch) -> None:
        """The stream ended (or never started): its place is free. Closing twice is nothing."""
        if watch.closed:
            return
        watch.closed = True
        STREAMS_OPEN.dec()
        for index, key in ((self._by_order, watch.order_id), (self._by_user, watch.user_id)):
            index[key].discard(watch)
            if not index[key]:
                del index[key]

    def open_streams(self) -> int:
        return sum(len(watches) for watches in self._by_user.values())

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        kind, _, rest = payload.rpartition(":")
        try:
            key = uuid.UUID(rest)
        except ValueError:
            return
        if kind == "user":
            for watch in self._by_user.get(key, ()):
                watch.account_changed = True
                watch.woken.set()
        elif not kind:
            for watch in self._by_order.get(key, ()):
                watch.woken.set()

    def _wake_all(self) -> None:
        for watches in self._by_order.values():
            for watch in watches:
                watch.woken.set()

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("order_changes_listener_lost", error=type(exc).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(RECONNECT_AFTER_S)

    async def _listen(self) -> None:
        """Until the connection is lost: listen, and ping it now and then."""
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self.listening.set()
            self._wake_all()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PING_EVERY_S)
                if not lost.is_set():
                    await conn.execute("SELECT 1", timeout=5)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)


def sse(event_id: int, event: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def sse_error(code: str, message: str) -> bytes:
    """The last event of a stream the server ends for good (no id: a reconnect resumes from
    the last order sent, and is then refused with the same code)."""
    body = {"error": {"code": code, "message": message, "details": None}}
    return f"event: error\ndata: {json.dumps(body)}\n\n".encode()


# Why a stream may not go on: an error code and message, or None while it may.
Authorise = Callable[[bool], Awaitable[tuple[str, str] | None]]


async def order_stream(
    watch: Watch,
    read: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    authorise: Authorise,
    *,
    last_event_id: int | None,
    stopping: Callable[[], bool],
    keep_alive_s: float,
    expires_at: float | None,
) -> AsyncIterator[bytes]:
    """The stream of one order: ``read`` answers its newest timeline id and the order as JSON.

    It lives only as long as its token: ``authorise`` (``True``: ask afresh, the account just
    changed) is asked whenever the stream wakes and at every keep-alive, and the stream ends
    at ``expires_at`` (the token's exp), each time with a last ``error`` event saying why. It
    also ends when ``stopping`` says so (the server shuts down: clients reconnect elsewhere)."""
    sent = last_event_id
    # Sent once: how long a client waits before reconnecting after the stream ends.
    yield b"retry: 2000\n\n"
    while True:
        watch.woken.clear()
        refusal = await authorise(watch.take_account_changed())
        if refusal is not None:
            yield sse_error(*refusal)
            return
        newest, order = await read()
        if newest != sent:
            yield sse(newest, "order", order)
            sent = newest
        waited = 0.0
        while not watch.woken.is_set():
            left = math.inf if expires_at is None else expires_at - time.time()
            if left <= 0:
                yield sse_error("token_expired", "The access token has expired; log in again.")
                return
            tick = min(1.0, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.woken.wait(), tick)
            if stopping():
                return
            waited += tick
            if waited >= keep_alive_s and not watch.woken.is_set():
                refusal = await authorise(False)
                if refusal is not None:
                    yield sse_error(*refusal)
                    return
                yield b": keep-alive\n\n"
                waited = 0.0
