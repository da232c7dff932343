"""Listing and replaying parked messages (``python -m shared_events dlq list|replay <service>``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import aio_pika

from shared_events.bus import event_message
from shared_events.topology import ATTEMPT_HEADER, ERROR_HEADER, parked_queue_name


@dataclasses.dataclass
class ParkedMessage:
    message_id: str | None
    event_type: str | None
    correlation_id: str | None
    attempts: int
    error: str
    failed_at: str
    body: str


def _describe(message: Any) -> ParkedMessage:
    headers = dict(message.headers or {})
    return ParkedMessage(
        message_id=message.message_id,
        event_type=message.type,
        correlation_id=message.correlation_id,
        attempts=int(headers.get(ATTEMPT_HEADER, 0)),
        error=str(headers.get(ERROR_HEADER, "")),
        failed_at=str(headers.get("x-failed-at", "")),
        body=message.body.decode(errors="replace"),
    )


class UnknownService(Exception):
    """No such service queue on the broker: a typo, or a service that never started here."""


@dataclasses.dataclass
class Replay:
    moved: int
    remaining: int


async def _require_queues(connection: aio_pika.abc.AbstractConnection, service: str) -> int:
    """The parked messages' count; refuses (declaring nothing) a service the broker does not
    know. Passive declarations: a missing queue is an error, never created."""
    for name in (service, parked_queue_name(service)):
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            raise UnknownService(
                f"no queue {name!r} on this broker: {service!r} is not a service that ran here"
            ) from None
        finally:
            if not channel.is_closed:
                await channel.close()
    assert queue.declaration_result.message_count is not None
    return queue.declaration_result.message_count


async def _peek(
    connection: aio_pika.abc.AbstractConnection, service: str, limit: int
) -> list[ParkedMessage]:
    """Up to ``limit`` parked messages, fetched unacknowledged: they go back to the queue when
    the channel closes."""
    channel = await connection.channel()
    queue = await channel.get_queue(parked_queue_name(service), ensure=False)
    found = []
    for _ in range(limit):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        found.append(_describe(message))
    await channel.close()
    return found


async def list_parked(amqp_url: str, service: str, limit: int = 100) -> list[ParkedMessage]:
    """Read up to ``limit`` parked messages without removing them."""
    connection = await aio_pika.connect(amqp_url)
    try:
        await _require_queues(connection, service)
        return await _peek(connection, service, limit)
    finally:
        await connection.close()


async def inspect(
    amqp_url: str, service: str, limit: int
) -> tuple[dict[str, int], list[ParkedMessage]]:
    """On one connection: the service queue's waiting messages and consumers, how many are
    parked, and up to ``limit`` of those (left parked)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        parked = await _require_queues(connection, service)
        channel = await connection.channel()
        result = (await channel.declare_queue(service, passive=True)).declaration_result
        await channel.close()
        state = {
            "messages": int(result.message_count or 0),
            "consumers": int(result.consumer_count or 0),
            "parked": parked,
        }
        return state, await _peek(connection, service, limit)
    finally:
        await connection.close()


async def replay_parked(
    amqp_url: str, service: str, limit: int | None = None, message_id: str | None = None
) -> Replay:
    """Move parked messages back to the service queue with a fresh attempt count.

    A message leaves the parking queue only after the broker confirmed it was routed to the
    service queue (a mandatory publish, confirmed); one it could not route stays parked, and
    the replay stops there. At most the messages parked when it began are taken: one that
    fails again at once and is parked anew waits for the next replay (else it would be
    replayed for ever).
    """
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    try:
        parked = await _require_queues(connection, service)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.get_queue(parked_queue_name(service), ensure=False)
        skipped = []
        for _ in range(parked):
            if limit is not None and moved >= limit:
                break
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            if message_id is not None and message.message_id != message_id:
                skipped.append(message)
                continue
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = 1
            headers.pop(ERROR_HEADER, None)
            headers.pop("x-delivery-count", None)  # the parked queue's count, not the copy's
            try:
                await channel.default_exchange.publish(
                    event_message(
                        message.body,
                        message.type,
                        message.message_id,
                        message.correlation_id,
                        headers,
                        message.timestamp,
                        content_type=message.content_type,
                    ),
                    routing_key=service,
                    mandatory=True,
                )
            except (aio_pika.exceptions.PublishError, aio_pika.exceptions.DeliveryError):
                await message.nack(requeue=True)
                break
            await message.ack()
            moved += 1
        for message in skipped:
            await message.nack(requeue=True)
        await channel.close()
        remaining = await _require_queues(connection, service)
        return Replay(moved=moved, remaining=remaining)
    finally:
        await connection.close()
