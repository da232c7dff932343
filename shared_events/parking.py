"""Listing and replaying parked messages (``python -m shared_events dlq list|replay <service>``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import aio_pika

from shared_events.consumer import ATTEMPT_HEADER, ERROR_HEADER
from shared_events.topology import parked_queue_name


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


async def list_parked(amqp_url: str, service: str, limit: int = 100) -> list[ParkedMessage]:
    """Read up to ``limit`` parked messages without removing them.

    Messages are fetched unacknowledged and returned to the queue when the channel closes.
    """
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(parked_queue_name(service), durable=True)
        found = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_describe(message))
        await channel.close()  # unacked messages go back to the queue
        return found
    finally:
        await connection.close()


async def replay_parked(
    amqp_url: str, service: str, limit: int | None = None, message_id: str | None = None
) -> int:
    """Move parked messages back to the service queue with a fresh attempt count."""
    connection = await aio_pika.connect(amqp_url)
    replayed = 0
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(parked_queue_name(service), durable=True)
        skipped = []
        while limit is None or replayed < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            if message_id is not None and message.message_id != message_id:
                skipped.append(message)
                continue
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = 1
            headers.pop(ERROR_HEADER, None)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.type,
                    correlation_id=message.correlation_id,
                    headers=headers,
                    timestamp=message.timestamp,
                ),
                routing_key=service,
            )
            await message.ack()
            replayed += 1
        for message in skipped:
            await message.nack(requeue=True)
        await channel.close()
        return replayed
    finally:
        await connection.close()
