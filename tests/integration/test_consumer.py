"""The consumer: inbox idempotency, retries with backoff, parking and replay, broker faults."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import aio_pika
import asyncpg
import pytest
import sqlalchemy as sa

from shared_events.bus import EventBus
from shared_events.consumer import EventConsumer
from shared_events.events import UserRegistered
from shared_events.parking import Replay, UnknownService, list_parked, replay_parked
from shared_events.relay import OutboxRelay
from shared_events.store import add_event
from shared_events.topology import ERROR_HEADER, parked_queue_name
from tests.integration.conftest import effects
from tests.support import AMQP_URL, AMQP_VHOST, PG, ROOT, eventually, rabbitmqctl


def registered() -> UserRegistered:
    user = uuid.uuid4()
    return UserRegistered(user_id=user, email=f"{user.hex[:8]}@example.com", full_name="Test")


async def publish(bus: EventBus, event: UserRegistered) -> None:
    await bus.publish(
        body=event.to_json(),
        event_type=event.event_type(),
        message_id=str(event.id),
        routing_key=event.routing_key,
        correlation_id=str(event.user_id),
        headers={"x-request-id": "test"},
    )


async def effect_rows(sessionmaker) -> list:
    async with sessionmaker() as session:
        return list((await session.execute(sa.select(effects))).all())


def consumer_for(bus, sessionmaker, service, handler, **kwargs) -> EventConsumer:
    options = {"prefetch": 50, "max_attempts": 3, "base_delay_ms": 200} | kwargs
    return EventConsumer(
        service=service,
        bus=bus,
        sessionmaker=sessionmaker,
        handlers={UserRegistered: handler},
        **options,
    )


async def record(session, event, context) -> None:
    await session.execute(effects.insert().values(event_id=event.id, attempt=context.attempt))


async def test_the_same_event_delivered_twice_has_one_effect(bus, sessionmaker, names):
    calls = []

    async def handler(session, event, context):
        calls.append(event.id)
        await record(session, event, context)

    consumer = consumer_for(bus, sessionmaker, names["service"], handler)
    await consumer.start()
    try:
        event, other = registered(), registered()
        await publish(bus, event)
        await publish(bus, event)
        await publish(bus, other)  # published last: once it is handled, so are the others
        rows = await eventually(
            lambda: effect_rows(sessionmaker),
            until=lambda rows: other.id in {r.event_id for r in rows},
        )
        # The duplicate may still be in flight; wait until the queue is drained.
        await eventually(lambda: _queue_depth(names["service"]), until=lambda n: n == 0)
        rows = await effect_rows(sessionmaker)
        assert sorted(r.event_id for r in rows) == sorted([event.id, other.id])
        assert calls.count(event.id) == 1
    finally:
        await consumer.stop()


async def test_handler_failing_twice_is_retried_with_growing_delays(bus, sessionmaker, names):
    attempts: list[tuple[int, float]] = []

    async def flaky(session, event, context):
        attempts.append((context.attempt, time.monotonic()))
        if context.attempt < 3:
            raise RuntimeError(f"provider down (attempt {context.attempt})")
        await record(session, event, context)

    consumer = consumer_for(bus, sessionmaker, names["service"], flaky, max_attempts=5)
    await consumer.start()
    try:
        event = registered()
        await publish(bus, event)
        rows = await eventually(lambda: effect_rows(sessionmaker), timeout=15)
        assert [(r.event_id, r.attempt) for r in rows] == [(event.id, 3)]
        assert [a for a, _ in attempts] == [1, 2, 3]
        first_wait = attempts[1][1] - attempts[0][1]
        second_wait = attempts[2][1] - attempts[1][1]
        assert first_wait >= 0.18  # base delay 200 ms
        assert second_wait >= 0.38  # then 400 ms
        assert second_wait > first_wait
    finally:
        await consumer.stop()


async def test_always_failing_event_is_parked_and_the_consumer_goes_on(bus, sessionmaker, names):
    poison = registered()
    fixed = False

    async def handler(session, event, context):
        if event.id == poison.id and not fixed:
            raise ValueError("cannot handle this one")
        await record(session, event, context)

    service = names["service"]
    consumer = consumer_for(bus, sessionmaker, service, handler, max_attempts=3, base_delay_ms=100)
    await consumer.start()
    try:
        await publish(bus, poison)
        healthy = [registered() for _ in range(5)]
        for event in healthy:
            await publish(bus, event)

        rows = await eventually(
            lambda: effect_rows(sessionmaker), until=lambda rows: len(rows) == 5, timeout=10
        )
        assert {r.event_id for r in rows} == {e.id for e in healthy}

        parked = await eventually(
            lambda: list_parked(AMQP_URL, service), until=lambda p: len(p) == 1, timeout=10
        )
        assert parked[0].message_id == str(poison.id)
        assert parked[0].attempts == 3
        assert "ValueError: cannot handle this one" in parked[0].error
        # Listing does not consume.
        assert len(await list_parked(AMQP_URL, service)) == 1

        fixed = True
        assert await replay_parked(AMQP_URL, service) == Replay(moved=1, remaining=0)
        rows = await eventually(
            lambda: effect_rows(sessionmaker), until=lambda rows: len(rows) == 6, timeout=10
        )
        assert poison.id in {r.event_id for r in rows}
        assert await list_parked(AMQP_URL, service) == []
    finally:
        await consumer.stop()


async def _transaction(session) -> int:
    return await session.scalar(sa.text("SELECT txid_current()"))


async def test_one_batch_commits_together_and_its_poison_event_is_parked_alone(
    bus, sessionmaker, names
):
    poison, healthy = registered(), [registered() for _ in range(6)]
    transactions: dict[uuid.UUID, int] = {}

    async def handler(session, event, context):
        transactions[event.id] = await _transaction(session)
        await record(session, event, context)
        if event.id == poison.id:
            raise ValueError("cannot handle this one")

    service = names["service"]
    # Everything is queued before the consumer starts, and a batch waits long enough to take it.
    consumer = consumer_for(
        bus, sessionmaker, service, handler, max_attempts=2, base_delay_ms=100, batch_wait_ms=300
    )
    await consumer.start()
    await consumer.stop()  # declares the queues
    for event in [*healthy[:3], poison, *healthy[3:]]:
        await publish(bus, event)
    await consumer.start()
    try:
        rows = await eventually(
            lambda: effect_rows(sessionmaker), until=lambda rows: len(rows) == 6, timeout=10
        )
        assert {r.event_id for r in rows} == {e.id for e in healthy}  # the poison's rolled back
        assert len({transactions[e.id] for e in healthy}) == 1  # one transaction for the batch
        parked = await eventually(
            lambda: list_parked(AMQP_URL, service), until=lambda p: len(p) == 1, timeout=10
        )
        assert parked[0].message_id == str(poison.id)
        assert "ValueError: cannot handle this one" in parked[0].error
        async with sessionmaker() as session:
            handled = set(await session.scalars(sa.text("SELECT event_id FROM inbox")))
        assert poison.id not in handled  # its inbox row went with its savepoint
        assert {e.id for e in healthy} <= handled
    finally:
        await consumer.stop()


async def test_a_duplicate_inside_one_batch_has_one_effect(bus, sessionmaker, names):
    calls = []

    async def handler(session, event, context):
        calls.append(await _transaction(session))
        await record(session, event, context)

    service = names["service"]
    consumer = consumer_for(bus, sessionmaker, service, handler, batch_wait_ms=300)
    await consumer.start()
    await consumer.stop()
    event, other = registered(), registered()
    for message in (event, event, other, event):
        await publish(bus, message)
    await consumer.start()
    try:
        await eventually(lambda: _queue_depth(service), until=lambda n: n == 0, timeout=10)
        rows = await effect_rows(sessionmaker)
        assert sorted(r.event_id for r in rows) == sorted([event.id, other.id])
        assert len(calls) == 2 and calls[0] == calls[1]  # both in the one batch
    finally:
        await consumer.stop()


def test_dlq_tools_refuse_a_service_that_does_not_exist_and_create_nothing():
    ghost = f"no_such_service_{uuid.uuid4().hex[:6]}"
    for action in ("list", "replay"):
        result = subprocess.run(
            [sys.executable, "-m", "shared_events", "--amqp-url", AMQP_URL, "dlq", action, ghost],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert f"{ghost!r} is not a service that ran here" in result.stderr
    queues = rabbitmqctl("list_queues", "-p", AMQP_VHOST, "name")
    assert ghost not in queues


async def test_replay_moves_nothing_when_the_service_queue_is_gone(bus, sessionmaker, names):
    async def handler(session, event, context):
        raise ValueError("always fails")

    service = names["service"]
    consumer = consumer_for(bus, sessionmaker, service, handler, max_attempts=1)
    await consumer.start()
    try:
        await publish(bus, registered())
        await eventually(lambda: list_parked(AMQP_URL, service), until=lambda p: len(p) == 1)
    finally:
        await consumer.stop()
    channel = await bus.connection.channel()
    await channel.queue_delete(service)
    await channel.close()
    with pytest.raises(UnknownService):
        await replay_parked(AMQP_URL, service)
    [still] = await list_parked_raw(service)
    assert "always fails" in still


async def list_parked_raw(service: str) -> list[str]:
    """The parked queue's messages, read without the tools (they refuse a half-gone service)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(parked_queue_name(service), ensure=False)
        found = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            found.append(str((message.headers or {}).get(ERROR_HEADER, "")))
        return found


async def test_malformed_message_is_parked_at_once(bus, sessionmaker, names):
    calls = []

    async def handler(session, event, context):
        calls.append(event)

    service = names["service"]
    consumer = consumer_for(bus, sessionmaker, service, handler)
    await consumer.start()
    try:
        await bus.publish(
            body=b'{"not": "a user"}',
            event_type="UserRegistered",
            message_id=str(uuid.uuid4()),
            routing_key="user.registered",
            correlation_id=None,
            headers={},
        )
        parked = await eventually(lambda: list_parked(AMQP_URL, service), timeout=5)
        assert parked[0].attempts == 1
        assert "invalid UserRegistered body" in parked[0].error
        assert calls == []
    finally:
        await consumer.stop()


def pipeline(bus, sessionmaker, service, database_url) -> tuple[EventConsumer, OutboxRelay]:
    """A service's consumer and outbox relay on one database, as a service runs them."""
    consumer = consumer_for(bus, sessionmaker, service, record, max_attempts=5)
    relay = OutboxRelay(
        service=service,
        bus=bus,
        sessionmaker=sessionmaker,
        database_url=database_url,
        batch_size=50,
        poll_interval_s=0.2,
    )
    return consumer, relay


async def each_consumed_once(sessionmaker, service: str, events: list[UserRegistered]) -> None:
    await eventually(
        lambda: effect_rows(sessionmaker),
        until=lambda rows: len(rows) >= len(events),
        timeout=60,
        interval=0.2,
        what="every event consumed",
    )
    await eventually(lambda: _queue_depth(service), until=lambda n: n == 0, timeout=20)
    rows = await effect_rows(sessionmaker)
    assert len(rows) == len(events)  # no duplicate effect
    assert {r.event_id for r in rows} == {e.id for e in events}  # none lost


async def test_closing_broker_connections_under_load_loses_nothing(
    bus, sessionmaker, names, events_database_url
):
    service = names["service"]
    consumer, relay = pipeline(bus, sessionmaker, service, events_database_url)
    reconnects = []
    bus.connection.reconnect_callbacks.add(lambda *_: reconnects.append(1))
    await consumer.start()
    relay.start()
    events = [registered() for _ in range(600)]
    try:
        for batch_start in range(0, len(events), 50):
            async with sessionmaker() as session, session.begin():
                for event in events[batch_start : batch_start + 50]:
                    await add_event(session, event)
            if batch_start in (100, 350):
                before = len(reconnects)
                await asyncio.to_thread(
                    rabbitmqctl, "close_all_connections", "-p", AMQP_VHOST, "fault injection"
                )
                # Fault it again only once it is back, with the backlog still in flight.
                await eventually(
                    lambda: asyncio.sleep(0, result=len(reconnects)),
                    until=lambda n, before=before: n > before,
                    timeout=20,
                    what="the reconnection",
                )

        await each_consumed_once(sessionmaker, service, events)
        assert len(reconnects) >= 2  # the faults really happened, and were recovered from
    finally:
        await relay.stop()
        await consumer.stop()


async def _drop_database_connections(database_url: str) -> int:
    """What a PostgreSQL restart does to the pools: every connection to the database dies."""
    admin = await asyncpg.connect(f"{PG.replace('+asyncpg', '')}/postgres")
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database_url.rsplit("/", 1)[1],
            )
        )
    finally:
        await admin.close()


async def test_dropped_database_connections_under_load_lose_nothing(
    bus, sessionmaker, names, events_database_url
):
    service = names["service"]
    consumer, relay = pipeline(bus, sessionmaker, service, events_database_url)
    await consumer.start()
    relay.start()
    events = [registered() for _ in range(400)]
    dropped = []
    try:
        for batch_start in range(0, len(events), 50):
            # The pool pings a connection before handing it out: no write meets a dead one.
            async with sessionmaker() as session, session.begin():
                for event in events[batch_start : batch_start + 50]:
                    await add_event(session, event)
            if batch_start in (100, 250):
                dropped.append(await _drop_database_connections(events_database_url))

        await each_consumed_once(sessionmaker, service, events)
        assert all(n >= 2 for n in dropped)  # the pool's and the relay's listener, at least
    finally:
        await relay.stop()
        await consumer.stop()


async def _queue_depth(queue: str) -> int:
    """Ready plus unacknowledged messages of a queue, as the broker reports them."""
    out = await asyncio.to_thread(
        rabbitmqctl,
        "list_queues",
        "-p",
        AMQP_VHOST,
        "name",
        "messages",
        "--no-table-headers",
    )
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    return 0


async def test_a_replay_of_a_message_that_fails_at_once_ends(bus, sessionmaker, names):
    """A replayed message parked again at once (it still fails) waits for the next replay:
    a replay of everything takes what was parked when it began, and ends."""

    async def handler(session, event, context):
        raise ValueError("always fails")

    service = names["service"]
    consumer = consumer_for(bus, sessionmaker, service, handler, max_attempts=1)
    await consumer.start()
    try:
        for _ in range(30):
            await publish(bus, registered())
        await eventually(lambda: list_parked(AMQP_URL, service), until=lambda p: len(p) == 30)
        done = await asyncio.wait_for(replay_parked(AMQP_URL, service), 20)
        assert done.moved == 30  # not the copies parked again while it ran
        # Handled again, failed again, parked again: there for the next replay.
        await eventually(lambda: list_parked(AMQP_URL, service), until=lambda p: len(p) == 30)
    finally:
        await consumer.stop()
