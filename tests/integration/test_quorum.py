"""Service, retry and parked queues are quorum queues; the classic queues an older version
declared are migrated when the service declares its queues, every message kept."""

from __future__ import annotations

import aio_pika
import httpx

from shared_events.topology import (
    DELIVERY_LIMIT,
    declare_exchange,
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)
from tests.support import AMQP_URL, AMQP_VHOST, eventually

MANAGEMENT = "http://127.0.0.1:15672/api/queues"


async def management(name: str) -> httpx.Response:
    """The management API's view of a queue: its type and arguments (404: no such queue)."""
    async with httpx.AsyncClient(auth=("guest", "guest")) as client:
        return await client.get(f"{MANAGEMENT}/{AMQP_VHOST}/{name}")


async def counts(names: list[str]) -> list[int]:
    """Messages ready in each queue, as the broker says now (not the management's sample)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        found = []
        for name in names:
            queue = await channel.declare_queue(name, passive=True)
            found.append(queue.declaration_result.message_count)
        return found


async def test_classic_queues_become_quorum_queues_with_every_message(bus, names, service_queues):
    service = names["service"]
    retry = [retry_queue_name(service, d) for d in retry_delays_ms(5, 100)]
    parked = parked_queue_name(service)
    channel, exchange = service_queues.channel, service_queues.exchange
    # What the previous version declared: classic queues, with messages in them.
    old = await channel.declare_queue(service, durable=True)
    await old.bind(exchange, routing_key="order.created")
    for name, delay in zip(retry, retry_delays_ms(5, 100), strict=True):
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": service,
            },
        )
    await channel.declare_queue(parked, durable=True)
    for n in range(4):
        await exchange.publish(aio_pika.Message(f"event {n}".encode()), "order.created")
    await channel.default_exchange.publish(aio_pika.Message(b"retried"), retry[-1])
    for n in range(3):
        await channel.default_exchange.publish(aio_pika.Message(f"parked {n}".encode()), parked)

    await service_queues.declare()

    for name in [service, *retry, parked]:
        assert (await management(name)).json()["type"] == "quorum", name
    arguments = (await management(service)).json()["arguments"]
    assert arguments["x-delivery-limit"] == DELIVERY_LIMIT
    # The retried one comes back to the service queue after its delay, as before.
    assert await eventually(
        lambda: counts([service, parked]), until=lambda c: c == [5, 3], timeout=10
    )
    # The routing keys are the service queue's again: a new event lands there (published on
    # another channel: this one routed to the classic queues, RabbitMQ 3.10 keeps their type).
    channel = await bus.connection.channel()
    exchange = await declare_exchange(channel, names["exchange"])
    await exchange.publish(aio_pika.Message(b"after"), "order.created")
    assert await eventually(lambda: counts([service]), until=lambda c: c == [6], timeout=5)
    assert (await management(f"{service}.migrating")).status_code == 404
    await channel.close()


async def test_declaring_again_changes_nothing(names, service_queues):
    for _ in range(2):
        await service_queues.declare()
    await service_queues.exchange.publish(aio_pika.Message(b"one"), "order.created")
    assert await eventually(lambda: counts([names["service"]]), until=lambda c: c == [1], timeout=5)


async def test_a_migration_cut_off_is_finished_at_the_next_start(names, service_queues):
    service = names["service"]
    channel, exchange = service_queues.channel, service_queues.exchange
    await service_queues.declare()
    # Cut off after the queue was declared anew: two messages still in the holding queue.
    holding = await channel.declare_queue(
        f"{service}.migrating", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await holding.bind(exchange, routing_key="order.created")
    for n in range(2):
        await channel.default_exchange.publish(aio_pika.Message(f"{n}".encode()), holding.name)

    await service_queues.declare()

    assert await eventually(lambda: counts([service]), until=lambda c: c == [2], timeout=5)
    assert (await management(f"{service}.migrating")).status_code == 404
