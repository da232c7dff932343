"""An erased person's messages where they wait: every service, on UserDeleted, anonymises the
messages about them in its retry and parked queues (whatever else it erases of its own).

A message cannot be changed in a queue: each one about the person (its ``userId``) is taken,
a copy with the person's fields erased (``store.anonymised``) is published to the same queue
(confirmed, same headers), and then the original is acked; the others are put back. The sweep
runs once the erasure committed, and again once every retry under way has run out (a delivery
being handled at that moment may still fail and wait).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from shared_core.context import after_commit
from shared_events.bus import EventBus, event_message
from shared_events.events import UserDeleted
from shared_events.store import anonymised
from shared_events.topology import parked_queue_name, retry_queue_name

log = structlog.get_logger(__name__)

# A sweep reads at most this many messages of one queue (a parking queue that large is an
# incident of its own); what it did not reach is said in the log.
SCRUB_LIMIT = 10_000
# Beyond the retries' delays, the time a last attempt may take before it is parked.
SETTLE_S = 15.0
Handler = Callable[[Any, Any, Any], Awaitable[None]]  # shared_events.consumer.Handler


def _about(body: bytes, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The event body, if it is about ``user_id`` (its ``userId``) and names them."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("userId") != str(user_id):
        return None
    return payload if anonymised(payload) != payload else None


async def scrub(
    connection: aio_pika.abc.AbstractConnection, queues: list[str], user_id: uuid.UUID
) -> int:
    """Anonymise every message about ``user_id`` waiting in ``queues`` (a service's retry and
    parked queues): each is replaced by a copy with the person's fields erased (confirmed,
    same headers, same queue), then the original is acked; the others are put back. Returns
    how many were replaced."""
    replaced = 0
    channel = await connection.channel(publisher_confirms=True)
    try:
        for name in queues:
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                # Not declared by this version (another retry schedule): nothing waits there.
                channel = await connection.channel(publisher_confirms=True)
                continue
            waiting = int(queue.declaration_result.message_count or 0)
            if waiting > SCRUB_LIMIT:
                log.warning("scrub_queue_too_long", queue=name, messages=waiting)
            kept = []
            for _ in range(min(waiting, SCRUB_LIMIT)):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                payload = _about(message.body, user_id)
                if payload is None:
                    kept.append(message)
                    continue
                await channel.default_exchange.publish(
                    event_message(
                        json.dumps(anonymised(payload)).encode(),
                        message.type,
                        message.message_id,
                        message.correlation_id,
                        dict(message.headers or {}),
                        message.timestamp,
                        content_type=message.content_type,
                    ),
                    routing_key=name,
                )
                await message.ack()
                replaced += 1
            for message in kept:
                await message.nack(requeue=True)
    finally:
        if not channel.is_closed:
            await channel.close()
    return replaced


class ErasureSweeper:
    """The sweeps of one service's consumer (``handler`` wraps the service's own UserDeleted
    handler, or stands alone)."""

    def __init__(self, service: str, bus: EventBus, retry_delays_ms: list[int]) -> None:
        self.queues = [retry_queue_name(service, d) for d in retry_delays_ms]
        self.queues.append(parked_queue_name(service))
        self.bus = bus
        self.retries_run_out_s = sum(retry_delays_ms) / 1000 + SETTLE_S
        self._tasks: set[asyncio.Task[None]] = set()
        # One sweep at a time in this process: a sweep holds every message it passes over
        # until its end, and another sweep would not see them.
        self._one_at_a_time = asyncio.Lock()

    def handler(self, own: Handler | None) -> Handler:
        async def on_user_deleted(
            session: AsyncSession | None, event: UserDeleted, context: Any
        ) -> None:
            if own is not None:
                await own(session, event, context)

            async def sweep() -> None:
                task = asyncio.create_task(self._sweep(event.user_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

            if session is None:  # a service without a database: its handler is all there is
                await sweep()
            else:
                after_commit(session, sweep)

        return on_user_deleted

    async def _sweep(self, user_id: uuid.UUID) -> None:
        for wait_s in (0.0, self.retries_run_out_s):
            await asyncio.sleep(wait_s)
            try:
                async with self._one_at_a_time:
                    replaced = await scrub(self.bus.connection, self.queues, user_id)
            except Exception as exc:
                log.warning("erasure_sweep_failed", error=repr(exc))
                continue
            if replaced:
                log.info("erasure_sweep", anonymised=replaced)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
