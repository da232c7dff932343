"""After the databases are restored to an instant T, the restored outboxes are the truth, not
what the broker holds (docs/operations.md, "What a restore does to the saga").

- ``purge_in_flight``: every message still in a service's queue or its retry queues is
  dropped. One published after T speaks of a state the databases no longer have: applying
  it would, say, commit stock that the restored product database never reserved. One
  published before T is sent again from its outbox (below). Parked messages stay, for a person.
- ``replay_outbox``: every outbox row created since ``since`` (T minus a window) is marked
  unpublished, so the service's relay sends it again. A consumer whose restored inbox holds
  the event (handled by T) skips it; one that handled it after T (forgotten with the restore)
  applies it again; one that never had it applies it for the first time.

Run both with the services stopped (``make restore-db`` does), so no delivery is held, retried
or published while the queues are emptied.
"""

from __future__ import annotations

from datetime import datetime

import aio_pika
import aio_pika.exceptions
import asyncpg

from shared_events.topology import retry_delays_ms, retry_queue_name

# Retry queues are named by their delay; any MAX_DELIVERY_ATTEMPTS (at most 20) and
# RETRY_BASE_DELAY_MS a service may have run with are looked for.
MAX_ATTEMPTS = 20


async def purge_in_flight(amqp_url: str, services: list[str], base_delay_ms: int) -> int:
    """Empty each service's queue and retry queues; how many messages were dropped."""
    names = []
    for service in services:
        names.append(service)
        names += [
            retry_queue_name(service, d) for d in retry_delays_ms(MAX_ATTEMPTS, base_delay_ms)
        ]
    dropped = 0
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                continue  # no such queue: the channel closed itself
            result = await queue.purge()
            dropped += result.message_count or 0
            await channel.close()
    return dropped


async def replay_outbox(dsn: str, since: datetime) -> int:
    """Mark the outbox rows created since ``since`` unpublished; how many. A database without
    an outbox (or none at all) has nothing to replay."""
    try:
        connection = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return 0
    try:
        status = await connection.execute(
            "UPDATE outbox SET published_at = NULL"
            " WHERE published_at IS NOT NULL AND created_at >= $1",
            since,
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()
    return int(status.split()[-1])


async def settle_after_restore(
    amqp_url: str, services: list[str], dsns: list[str], since: datetime, base_delay_ms: int
) -> tuple[int, int]:
    """Both, in order: the messages dropped, the events to be published again."""
    dropped = await purge_in_flight(amqp_url, services, base_delay_ms)
    replayed = 0
    for dsn in dsns:
        replayed += await replay_outbox(dsn, since)
    return dropped, replayed
