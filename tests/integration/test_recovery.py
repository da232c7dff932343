"""After a restore (shared_events.recovery): what the broker held for the services is dropped,
parked messages stay, and what the outbox wrote in the window before the instant is sent again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import sqlalchemy as sa

from shared_events.recovery import purge_in_flight, replay_outbox
from shared_events.store import outbox
from shared_events.topology import (
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)
from tests.support import AMQP_URL, PG


async def test_the_queues_are_emptied_and_parked_messages_stay(service_queues, names):
    service = names["service"]
    channel = service_queues.channel
    await service_queues.declare()
    retry = retry_queue_name(service, retry_delays_ms(5, 100)[-1])  # 800 ms: still there
    for queue, count in [(service, 3), (retry, 2), (parked_queue_name(service), 1)]:
        for n in range(count):
            await channel.default_exchange.publish(aio_pika.Message(f"{n}".encode()), queue)

    dropped = await purge_in_flight(AMQP_URL, [service, "no_such_service"], base_delay_ms=100)

    assert dropped == 5
    connection = await aio_pika.connect(AMQP_URL)  # not the bus's: a robust channel caches
    async with connection:
        counted = await connection.channel()
        for queue, left in [(service, 0), (retry, 0), (parked_queue_name(service), 1)]:
            declared = await counted.declare_queue(queue, passive=True)
            assert declared.declaration_result.message_count == left, queue


async def test_the_outbox_sends_again_what_it_wrote_since_the_window(
    sessionmaker, events_database_url
):
    now = datetime.now(UTC)
    rows = {
        "long before": (now - timedelta(hours=2), now - timedelta(hours=2)),
        "in the window": (now - timedelta(minutes=5), now - timedelta(minutes=5)),
        "never sent": (now - timedelta(minutes=1), None),
    }
    ids = {name: uuid.uuid4() for name in rows}
    async with sessionmaker() as session, session.begin():
        for name, (created, published) in rows.items():
            await session.execute(
                outbox.insert().values(
                    id=ids[name],
                    event_type="OrderCreated",
                    routing_key="order.created",
                    payload={},
                    headers={},
                    created_at=created,
                    published_at=published,
                )
            )
    dsn = events_database_url.replace("+asyncpg", "")

    assert await replay_outbox(dsn, now - timedelta(minutes=30)) == 1

    async with sessionmaker() as session:
        unsent = set(
            await session.scalars(sa.select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        )
    assert unsent == {ids["in the window"], ids["never sent"]}


async def test_a_database_without_an_outbox_has_nothing_to_replay():
    base = PG.replace("+asyncpg", "")
    assert (
        await replay_outbox(f"{base}/no_such_database_{uuid.uuid4().hex[:6]}", datetime.now(UTC))
        == 0
    )
    assert await replay_outbox(f"{base}/postgres", datetime.now(UTC)) == 0
