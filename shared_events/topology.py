"""The exchange and each service's queue, retry queues and parking queue.

For a service ``S``:

- ``S``: its durable queue, bound to ``ecommerce.events`` with the routing keys it handles;
- ``S.retry.<delay>ms``: one queue per backoff step; a failed message waits there for the
  queue's TTL, then is dead-lettered back to ``S`` through the default exchange;
- ``S.parked``: messages that failed every attempt, with the error in their headers.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue


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
    queue = await channel.declare_queue(service, durable=True)
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    for delay in retry_delays_ms(max_attempts, base_delay_ms):
        await channel.declare_queue(
            retry_queue_name(service, delay),
            durable=True,
            arguments={
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": service,
            },
        )
    await channel.declare_queue(parked_queue_name(service), durable=True)
    return queue
