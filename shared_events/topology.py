"""The exchange and each service's queue, retry queues and parking queue.

For a service ``S``:

- ``S``: its durable queue, bound to ``ecommerce.events`` with the routing keys it handles;
- ``S.retry.<delay>ms``: one queue per backoff step; a failed message waits there for the
  queue's TTL, then is dead-lettered back to ``S`` through the default exchange;
- ``S.parked``: messages that failed every attempt, with the error in their headers.

All three are quorum queues: replicated by a RabbitMQ cluster (a majority of its nodes must
agree on each write), each message on disk before it is confirmed. A message the service
queue handed out ``DELIVERY_LIMIT`` times without an ack (a consumer that dies on it each time)
is dead-lettered to ``S.parked``. Dead-lettering (retry -> service, service -> parked) is
at-least-once. A queue an older version declared as a classic queue is migrated when it is
declared (``_migrate``), its messages kept.
"""

from __future__ import annotations

from typing import Any

import aio_pika
import aiormq
import aiormq.abc
import aiormq.exceptions
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

log = structlog.get_logger(__name__)

# Deliveries of one message without an ack before the broker parks it: our consumer acks every
# message it takes (retries are republished copies), so only a consumer that dies holding it,
# again and again, reaches this.
DELIVERY_LIMIT = 20
QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
# At-least-once dead-lettering needs the queue to refuse publishes when full, not drop heads.
AT_LEAST_ONCE: dict[str, Any] = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


# Headers of a retried or parked copy: its attempt number, and the error that sent it there.
ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-error"


def parked_queue_name(service: str) -> str:
    return f"{service}.parked"


def retry_delays_ms(max_attempts: int, base_delay_ms: int) -> list[int]:
    """The wait before attempt 2, 3, ... max_attempts: base, 2 x base, 4 x base, ..."""
    return [base_delay_ms * 2**step for step in range(max_attempts - 1)]


def retry_queue_name(service: str, delay_ms: int) -> str:
    return f"{service}.retry.{delay_ms}ms"


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_service_queues(
    channel: AbstractChannel,
    *,
    exchange: AbstractExchange,
    service: str,
    routing_keys: list[str],
    max_attempts: int,
    base_delay_ms: int,
) -> AbstractQueue:
    parked = parked_queue_name(service)
    await _declare(channel, parked, QUORUM)
    for delay in retry_delays_ms(max_attempts, base_delay_ms):
        arguments = {
            **QUORUM,
            **AT_LEAST_ONCE,
            "x-message-ttl": delay,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": service,
        }
        await _declare(channel, retry_queue_name(service, delay), arguments)
    arguments = {
        **QUORUM,
        **AT_LEAST_ONCE,
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": parked,
    }
    queue = await _declare(channel, service, arguments, exchange, routing_keys)
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def _declare(
    channel: AbstractChannel,
    name: str,
    arguments: dict[str, Any],
    exchange: AbstractExchange | None = None,
    routing_keys: list[str] | None = None,
) -> AbstractQueue:
    """Declare ``name`` with ``arguments``; a queue of another type or with other arguments
    (a classic one from an older version) is migrated first, its messages kept."""
    connection = (await channel.get_underlay_channel()).connection
    exchange_name = exchange.name if exchange else ""
    probe = await connection.channel()  # a refused declaration closes its channel
    try:
        await probe.queue_declare(name, durable=True, arguments=arguments)
    except aiormq.exceptions.ChannelPreconditionFailed:
        await _migrate(connection, name, arguments, exchange_name, routing_keys)
    finally:
        if not probe.is_closed:
            await probe.close()
    await _finish_migration(connection, name, exchange_name, routing_keys)
    return await channel.declare_queue(name, durable=True, arguments=arguments)


async def _finish_migration(
    connection: aiormq.abc.AbstractConnection,
    name: str,
    exchange: str,
    routing_keys: list[str] | None,
) -> None:
    """A holding queue left by a migration cut off after its queue was declared anew: its
    messages go back to the queue."""
    channel = await connection.channel()
    try:
        await channel.queue_declare(f"{name}.migrating", passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return  # the usual case: no migration was cut off
    try:
        for key in routing_keys or []:
            await channel.queue_unbind(f"{name}.migrating", exchange, routing_key=key)
        moved = await _empty_into(channel, f"{name}.migrating", name)
        log.warning("queue_migration_finished", queue=name, messages=moved)
    finally:
        if not channel.is_closed:
            await channel.close()


async def _migrate(
    connection: aiormq.abc.AbstractConnection,
    name: str,
    arguments: dict[str, Any],
    exchange: str,
    routing_keys: list[str] | None,
) -> None:
    """Re-declare ``name`` with ``arguments`` without losing a message: its messages move to a
    holding quorum queue (which takes its routing keys meanwhile), it is deleted and declared
    anew, and they move back. Run with the old version's consumers stopped (docs/operations.md,
    "Quorum queues")."""
    holding = f"{name}.migrating"
    channel = await connection.channel()  # publisher confirms on
    try:
        await channel.queue_declare(holding, durable=True, arguments=QUORUM)
        for key in routing_keys or []:
            await channel.queue_bind(holding, exchange, routing_key=key)
        moved = await _move(channel, name, holding)
        await channel.queue_delete(name)
    finally:
        if not channel.is_closed:
            await channel.close()
    # A new channel: RabbitMQ 3.10 fails a channel that publishes to a queue it knew with
    # another type (the old queue's type stays in the channel's state).
    channel = await connection.channel()
    try:
        await channel.queue_declare(name, durable=True, arguments=arguments)
        for key in routing_keys or []:
            await channel.queue_bind(name, exchange, routing_key=key)
            await channel.queue_unbind(holding, exchange, routing_key=key)
        await _empty_into(channel, holding, name)
    finally:
        if not channel.is_closed:
            await channel.close()
    log.warning("queue_migrated", queue=name, messages=moved, arguments=arguments)


async def _empty_into(channel: aiormq.abc.AbstractChannel, holding: str, target: str) -> int:
    """Move every message of ``holding`` (no longer bound) into ``target``, then delete it
    once it is seen empty (quorum queues have no delete-if-empty)."""
    moved = 0
    while True:
        moved += await _move(channel, holding, target)
        declared = await channel.queue_declare(holding, passive=True)
        if not declared.message_count:
            await channel.queue_delete(holding)
            return moved


async def _move(channel: aiormq.abc.AbstractChannel, source: str, target: str) -> int:
    """Every message of ``source`` into ``target``, each acked there only once confirmed."""
    moved = 0
    while True:
        got = await channel.basic_get(source, no_ack=False)
        if not isinstance(got.delivery, aiormq.spec.Basic.GetOk):  # GetEmpty: all moved
            return moved
        properties = got.header.properties
        # A quorum queue counts deliveries in this header; the copy starts afresh (and
        # RabbitMQ 3.10 fails the channel on a publish that carries it).
        headers = dict(properties.headers or {})
        headers.pop("x-delivery-count", None)
        properties.headers = headers or None
        await channel.basic_publish(got.body, routing_key=target, properties=properties)
        assert got.delivery.delivery_tag is not None
        await channel.basic_ack(got.delivery.delivery_tag)
        moved += 1
