"""The one consumer wrapper: inbox for idempotency, ack after commit, retry with backoff, parking.

For each message: the handler's effects, the inbox row (the event id) and any outbox rows
the handler writes commit in one transaction, then the message is acked. A duplicate finds
its event id in the inbox and changes nothing. A handler that raises is republished to the
retry queue for its attempt (TTL, then back to the service queue); after the last attempt
it is parked with the error in its headers. The consumer never stops for one bad message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from opentelemetry import trace
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared_core.context import run_after_commit
from shared_events.bus import EventBus
from shared_events.events import Event
from shared_events.store import inbox
from shared_events.topology import (
    declare_exchange,
    declare_service_queues,
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)

log = structlog.get_logger(__name__)

ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-error"

EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events handled, by outcome (processed, duplicate, retried, parked).",
    ["service", "event_type", "outcome"],
)


@dataclasses.dataclass(frozen=True)
class EventContext:
    """What a handler may want to know about the delivery beyond the event itself."""

    attempt: int
    correlation_id: str | None
    request_id: str | None


Handler = Callable[[Any, Any, EventContext], Awaitable[None]]


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
        max_attempts: int = 5,
        base_delay_ms: int = 1000,
    ) -> None:
        self.service = service
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.handlers: dict[str, tuple[type[Event], Handler]] = {
            cls.event_type(): (cls, handler) for cls, handler in handlers.items()
        }
        self.prefetch = prefetch
        # At most this many handlers at once, each holding a database connection: the rest of
        # the prefetched messages wait here, not in the connection pool, where they would
        # starve the HTTP requests (seconds-long product reads under order load).
        self._slots = asyncio.Semaphore(concurrency)
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
        await self._queue.consume(self.on_message)

    async def stop(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None

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
            async with self._slots:
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
            handled = await self._handle(event, handler, context)
        except Exception as exc:
            await self._retry_or_park(message, attempt, exc)
            return
        await message.ack()
        outcome = "processed" if handled else "duplicate"
        EVENTS_CONSUMED.labels(self.service, event_type, outcome).inc()
        log.info("event_handled", outcome=outcome, attempt=attempt)

    async def _handle(self, event: Event, handler: Handler, context: EventContext) -> bool:
        """Run the handler and record the event id in one transaction; False for a duplicate.

        A service without a database (the cart) gets no session: its handlers are
        idempotent by themselves.
        """
        if self.sessionmaker is None:
            await handler(None, event, context)
            return True
        async with self.sessionmaker() as session:
            async with session.begin():
                first_time = await session.scalar(
                    insert(inbox)
                    .values(event_id=event.id, event_type=event.event_type())
                    .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
                    .returning(inbox.c.event_id)
                )
                if first_time is None:
                    return False
                await handler(session, event, context)
            await run_after_commit(session)
        return True

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
