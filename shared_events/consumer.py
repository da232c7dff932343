"""The one consumer wrapper: inbox for idempotency, ack after commit, retry with backoff, parking.

Deliveries are handled in micro-batches: what has arrived (up to ``batch_size``, or what
came within ``batch_wait_ms``) runs in one transaction: one multi-row inbox insert, each
handler inside its own SAVEPOINT, one commit, then each message is acked. A duplicate finds
its event id in the inbox and changes nothing. A handler that raises rolls back to its
savepoint (its inbox row goes too) while the others commit; its message is republished to
the retry queue for its attempt (TTL, then back to the service queue) and, after the last
attempt, parked with the error in its headers. A batch that fails as a whole (the database
went away) is tried again one message at a time. The consumer never stops for one bad
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared_core.context import run_after_commit
from shared_events.bus import EventBus
from shared_events.erasure import ErasureSweeper
from shared_events.events import Event, UserDeleted
from shared_events.store import inbox
from shared_events.topology import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    declare_exchange,
    declare_service_queues,
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)

log = structlog.get_logger(__name__)

EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events handled, by outcome (processed, duplicate, retried, parked).",
    ["service", "event_type", "outcome"],
)
BATCH_SIZE = Histogram(
    "event_batch_size",
    "Deliveries handled in one transaction.",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


@dataclasses.dataclass(frozen=True)
class EventContext:
    """What a handler may want to know about the delivery beyond the event itself."""

    attempt: int
    correlation_id: str | None
    request_id: str | None


Handler = Callable[[Any, Any, EventContext], Awaitable[None]]


@dataclasses.dataclass(eq=False)
class _Item:
    """One delivery waiting for its batch: the event, its handler, and where it logs and
    traces (the delivery's own context, kept while another task runs the handler)."""

    event: Event
    handler: Handler
    context: EventContext
    log_context: dict[str, Any]
    trace_context: otel_context.Context
    done: asyncio.Future[bool]


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
        handlers: dict[type[Event], Handler],
        prefetch: int = 100,
        concurrency: int = 8,
        batch_size: int = 50,
        batch_wait_ms: float = 1.0,
        max_attempts: int = 5,
        base_delay_ms: int = 1000,
    ) -> None:
        self.service = service
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.erasure = ErasureSweeper(service, bus, retry_delays_ms(max_attempts, base_delay_ms))
        handlers = {**handlers, UserDeleted: self.erasure.handler(handlers.get(UserDeleted))}
        self.handlers: dict[str, tuple[type[Event], Handler]] = {
            cls.event_type(): (cls, handler) for cls, handler in handlers.items()
        }
        self.prefetch = prefetch
        # Handlers without a database (the cart's) run at most this many at once.
        self._slots = asyncio.Semaphore(concurrency)
        # With a database, one batch at a time holds one connection: the next batch gathers
        # while it commits, so the HTTP requests always find connections in the pool.
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000
        self._pending: asyncio.Queue[_Item] = asyncio.Queue()
        self._batcher: asyncio.Task[None] | None = None
        self.max_attempts = max_attempts
        self.base_delay_ms = base_delay_ms
        self.delays_ms = retry_delays_ms(max_attempts, base_delay_ms)
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None

    async def start(self) -> None:
        channel: Any = await self.bus.connection.channel(publisher_confirms=True)
        self._channel = channel
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await declare_exchange(channel, self.bus.exchange_name)
        self._queue = await declare_service_queues(
            channel,
            exchange=exchange,
            service=self.service,
            routing_keys=[cls.routing_key for cls, _ in self.handlers.values()],
            max_attempts=self.max_attempts,
            base_delay_ms=self.base_delay_ms,
        )
        if self.sessionmaker is not None and self._batcher is None:
            self._batcher = asyncio.create_task(self._batches(), name=f"batches-{self.service}")
        await self._queue.consume(self.on_message)

    async def stop(self) -> None:
        self.erasure.stop()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
            self._batcher = None
        # Deliveries still waiting end unacked: the broker gives them out again.
        while not self._pending.empty():
            self._pending.get_nowait().done.cancel()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        headers = dict(message.headers or {})
        attempt = _attempt(headers.get(ATTEMPT_HEADER))
        request_id = _text(headers.get("x-request-id"))
        event_type = message.type or "unknown"
        span = trace.get_current_span()  # the delivery's consumer span, when tracing is on
        if span.is_recording():
            span.update_name(f"{event_type} receive")
            span.set_attribute("messaging.event_type", event_type)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id,
            correlation_id=message.correlation_id,
            event_type=event_type,
            event_id=message.message_id,
        )
        try:
            await self._process(message, event_type, attempt, request_id)
        except Exception as exc:
            # The channel went away under us (broker restart, closed connection): the
            # message was not acked, so the broker redelivers it and the inbox keeps
            # the effect single.
            log.warning("event_delivery_interrupted", error=repr(exc))
        finally:
            structlog.contextvars.clear_contextvars()

    async def _process(
        self,
        message: AbstractIncomingMessage,
        event_type: str,
        attempt: int,
        request_id: str | None,
    ) -> None:
        entry = self.handlers.get(event_type)
        if entry is None:
            await self._park(message, attempt, f"no handler for event type {event_type!r}")
            return
        event_cls, handler = entry
        try:
            event = event_cls.model_validate_json(message.body)
        except ValidationError as exc:
            # A malformed body will not improve with retries.
            await self._park(message, attempt, f"invalid {event_type} body: {exc}")
            return
        order_id = getattr(event, "order_id", None)
        if order_id is not None:  # every line about an order's saga names it, in every service
            structlog.contextvars.bind_contextvars(order_id=str(order_id))
        context = EventContext(attempt, message.correlation_id, request_id)
        try:
            if self.sessionmaker is None:
                # A service without a database (the cart): its handlers are idempotent alone.
                async with self._slots:
                    await handler(None, event, context)
                handled = True
            else:
                handled = await self._in_batch(event, handler, context)
        except Exception as exc:
            await self._retry_or_park(message, attempt, exc)
            return
        await message.ack()
        outcome = "processed" if handled else "duplicate"
        EVENTS_CONSUMED.labels(self.service, event_type, outcome).inc()
        log.info("event_handled", outcome=outcome, attempt=attempt)

    async def _in_batch(self, event: Event, handler: Handler, context: EventContext) -> bool:
        """Queue the event for the next batch and wait for its outcome: True when handled,
        False for a duplicate; the handler's exception when it failed."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        log_context = structlog.contextvars.get_contextvars()
        self._pending.put_nowait(
            _Item(event, handler, context, log_context, otel_context.get_current(), done)
        )
        return await done

    async def _batches(self) -> None:
        """Take what has arrived and handle it in one transaction, one batch at a time."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._pending.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                if not self._pending.empty():
                    batch.append(self._pending.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._pending.get(), left))
                except TimeoutError:
                    break
            BATCH_SIZE.labels(self.service).observe(len(batch))
            try:
                await self._handle_batch(batch)
            finally:
                for item in batch:  # stopped mid-batch: unacked, given out again
                    if not item.done.done():
                        item.done.cancel()

    async def _handle_batch(self, batch: list[_Item]) -> None:
        try:
            outcomes = await self._one_transaction(batch)
        except Exception as exc:
            if len(batch) > 1:
                # Nothing of it committed: each on its own, so one cause fails only itself.
                log.warning("event_batch_failed", size=len(batch), error=repr(exc))
                for item in batch:
                    await self._handle_batch([item])
                return
            outcomes = [exc]
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.done.done():  # its delivery was abandoned (channel closed)
                continue
            if isinstance(outcome, BaseException):
                item.done.set_exception(outcome)
            else:
                item.done.set_result(outcome)

    async def _one_transaction(self, batch: list[_Item]) -> list[bool | BaseException]:
        """Record the batch's event ids and run each new one's handler in its savepoint.

        Events of one order keep their order (a stable sort by correlation id, which also
        makes replicas take row locks in the same order).
        """
        assert self.sessionmaker is not None
        order = sorted(range(len(batch)), key=lambda i: batch[i].context.correlation_id or "")
        outcomes: dict[uuid.UUID, bool | BaseException] = {}
        results: list[bool | BaseException] = [False] * len(batch)
        async with self.sessionmaker() as session:
            async with session.begin():
                ids = {item.event.id: item.event.event_type() for item in batch}
                fresh = set(
                    (
                        await session.scalars(
                            insert(inbox)
                            .values([{"event_id": i, "event_type": t} for i, t in ids.items()])
                            .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
                            .returning(inbox.c.event_id)
                        )
                    ).all()
                )
                for index in order:
                    item = batch[index]
                    event_id = item.event.id
                    if event_id not in fresh or event_id in outcomes:
                        # Already handled (or twice in this batch): the first one's outcome.
                        earlier = outcomes.get(event_id, False)
                        results[index] = earlier if isinstance(earlier, BaseException) else False
                        continue
                    outcomes[event_id] = results[index] = await self._savepoint(session, item)
            await run_after_commit(session)
        return results

    async def _savepoint(self, session: AsyncSession, item: _Item) -> bool | BaseException:
        hooks = list(session.info.get("after_commit", []))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**item.log_context)
        token = otel_context.attach(item.trace_context)
        try:
            async with session.begin_nested():
                await item.handler(session, item.event, item.context)
            return True
        except Exception as exc:
            # Its effects are gone with the savepoint; so go its inbox row and its hooks.
            session.info["after_commit"] = hooks
            await session.execute(delete(inbox).where(inbox.c.event_id == item.event.id))
            return exc
        finally:
            otel_context.detach(token)
            structlog.contextvars.clear_contextvars()

    async def _retry_or_park(
        self, message: AbstractIncomingMessage, attempt: int, exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= self.max_attempts:
            log.error("event_parked", attempt=attempt, error=error)
            await self._park(message, attempt, error)
            return
        delay = self.delays_ms[attempt - 1]
        log.warning("event_retry_scheduled", attempt=attempt, delay_ms=delay, error=error)
        await self._republish(message, retry_queue_name(self.service, delay), attempt + 1, error)
        EVENTS_CONSUMED.labels(self.service, message.type or "unknown", "retried").inc()

    async def _park(self, message: AbstractIncomingMessage, attempt: int, error: str) -> None:
        await self._republish(message, parked_queue_name(self.service), attempt, error)
        EVENTS_CONSUMED.labels(self.service, message.type or "unknown", "parked").inc()

    async def _republish(
        self, message: AbstractIncomingMessage, queue_name: str, attempt: int, error: str
    ) -> None:
        """Copy the message to ``queue_name`` (confirmed), then ack the original.

        If the broker goes away in between, the original is redelivered and the inbox
        absorbs any duplicate.
        """
        assert self._channel is not None
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: error,
                "x-failed-at": datetime.now(UTC).isoformat(),
                "x-original-routing-key": headers.get("x-original-routing-key")
                or message.routing_key
                or "",
            }
        )
        await self.bus.publish(
            body=message.body,
            event_type=message.type or "unknown",
            message_id=message.message_id or str(uuid.uuid4()),
            routing_key=queue_name,
            correlation_id=message.correlation_id,
            headers=headers,
            created_at=message.timestamp,
            exchange=self._channel.default_exchange,
        )
        await message.ack()


def _attempt(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return str(value) if value is not None else None
