"""The transactional outbox and its relay, against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from shared_events.bus import EventBus
from shared_events.events import UserRegistered
from shared_events.relay import OutboxRelay
from shared_events.store import add_event, outbox
from tests.integration.conftest import drain
from tests.support import eventually


def registered(n: int) -> UserRegistered:
    return UserRegistered(user_id=uuid.uuid4(), email=f"u{n}@example.com", full_name=f"User {n}")


def make_relay(bus: EventBus, sessionmaker, url: str, **kwargs) -> OutboxRelay:
    return OutboxRelay(
        service="test", bus=bus, sessionmaker=sessionmaker, database_url=url, **kwargs
    )


async def unpublished(sessionmaker) -> int:
    async with sessionmaker() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).where(outbox.c.published_at.is_(None)))
            or 0
        )


async def test_event_in_rolled_back_transaction_is_never_published(
    bus, probe, sessionmaker, events_database_url
):
    async with sessionmaker() as session:
        async with session.begin():
            await add_event(session, registered(1))
            await session.rollback()
    committed = registered(2)
    async with sessionmaker() as session, session.begin():
        await add_event(session, committed)

    relay = make_relay(bus, sessionmaker, events_database_url)
    assert await relay.publish_batch() == (1, 0)
    assert await relay.publish_batch() == (0, 0)

    messages = await eventually(lambda: drain(probe), what="the committed event")
    assert [m.message_id for m in messages] == [str(committed.id)]


async def test_committed_events_are_published_exactly_once_with_two_relays(
    bus, probe, sessionmaker, events_database_url
):
    events = [registered(n) for n in range(300)]
    async with sessionmaker() as session, session.begin():
        for event in events:
            await add_event(session, event)

    relays = [
        make_relay(bus, sessionmaker, events_database_url, batch_size=20, poll_interval_s=0.1)
        for _ in range(2)
    ]
    for relay in relays:
        relay.start()
    try:
        await eventually(lambda: unpublished(sessionmaker), until=lambda n: n == 0, timeout=30)
    finally:
        for relay in relays:
            await relay.stop()

    received: list = []

    async def collect() -> int:
        received.extend(await drain(probe))
        return len(received)

    await eventually(collect, until=lambda n: n >= len(events), timeout=10)
    # Every row is marked sent only after its confirm, so any duplicate is queued by now.
    received.extend(await drain(probe))
    ids = [m.message_id for m in received]
    assert len(ids) == len(events)
    assert set(ids) == {str(e.id) for e in events}


async def test_message_carries_the_event_contract(bus, probe, sessionmaker, events_database_url):
    event = registered(7)
    async with sessionmaker() as session, session.begin():
        await add_event(session, event, correlation_id=event.user_id)
    await make_relay(bus, sessionmaker, events_database_url).publish_batch()

    [message] = await eventually(lambda: drain(probe), what="the message")
    assert message.routing_key == "user.registered"
    assert message.type == "UserRegistered"
    assert message.message_id == str(event.id)
    assert message.correlation_id == str(event.user_id)
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2  # persistent
    assert message.headers is not None
    assert {"x-request-id", "traceparent"} <= set(message.headers)
    assert UserRegistered.model_validate_json(message.body) == event
    assert b'"userId"' in message.body and b'"createdAt"' in message.body


async def test_relay_is_woken_by_the_commit_not_the_poll_interval(
    bus, probe, sessionmaker, events_database_url
):
    relay = make_relay(bus, sessionmaker, events_database_url, poll_interval_s=60)
    relay.start()
    try:
        # Let the relay find the outbox empty and settle into its idle wait.
        await asyncio.sleep(0.3)
        event = registered(3)
        async with sessionmaker() as session, session.begin():
            await add_event(session, event)
        # Far less than the 60 s poll interval: only the NOTIFY on commit can explain it.
        messages = await eventually(lambda: drain(probe), timeout=5, what="a woken relay")
        assert [m.message_id for m in messages] == [str(event.id)]
    finally:
        await relay.stop()
