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
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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


class OrderChanges(BackgroundTask):
    """One LISTEN connection per process, and the streams waiting on each order.

    After the connection was lost (a database restart), it reconnects and wakes every stream:
    a change may have committed while nobody listened."""

    task_name = "order-changes-listener"

    def __init__(self, dsn: str, streams_per_user: int) -> None:
        self.dsn = dsn
        self.streams_per_user = streams_per_user
        self._waiting: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._open: Counter[uuid.UUID] = Counter()
        self.listening = asyncio.Event()

    def admit(self, user_id: uuid.UUID) -> None:
        """Refuse a customer who has ``streams_per_user`` streams open in this process."""
        if self._open[user_id] >= self.streams_per_user:
            raise ApiError(
                429,
                "too_many_streams",
                f"At most {self.streams_per_user} order streams may be open at once; "
                "close one first.",
            )

    @contextlib.contextmanager
    def watch(self, order_id: uuid.UUID, user_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever the order changed, for as long as the stream is open."""
        woken = asyncio.Event()
        self._open[user_id] += 1
        self._waiting[order_id].add(woken)
        STREAMS_OPEN.inc()
        try:
            yield woken
        finally:
            STREAMS_OPEN.dec()
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]
            self._waiting[order_id].discard(woken)
            if not self._waiting[order_id]:
                del self._waiting[order_id]

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            order_id = uuid.UUID(payload)
        except ValueError:
            return
        for woken in self._waiting.get(order_id, ()):
            woken.set()

    def _wake_all(self) -> None:
        for streams in self._waiting.values():
            for woken in streams:
                woken.set()

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


async def order_stream(
    woken: asyncio.Event,
    read: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    last_event_id: int | None,
    stopping: Callable[[], bool],
    keep_alive_s: float,
) -> AsyncIterator[bytes]:
    """The stream of one order: ``read`` answers its newest timeline id and the order as JSON;
    ends when ``stopping`` says so (the server shuts down: clients reconnect elsewhere)."""
    sent = last_event_id
    # Sent once: how long a client waits before reconnecting after the stream ends.
    yield b"retry: 2000\n\n"
    while True:
        woken.clear()
        newest, order = await read()
        if newest != sent:
            yield sse(newest, "order", order)
            sent = newest
        waited = 0.0
        while not woken.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), 1.0)
            if stopping():
                return
            waited += 1.0
            if waited >= keep_alive_s and not woken.is_set():
                yield b": keep-alive\n\n"
                waited = 0.0
