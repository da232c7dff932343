"""Erasure without a gap, on the real PostgreSQL and RabbitMQ: an order and the erasure of its
customer never interleave, and an erased person's messages waiting in retry and parked queues
are anonymised."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.domain import Status
from order_service.models import ORDERS, Order
from order_service.service import erase_customer
from shared_events.consumer import EventConsumer
from shared_events.erasure import scrub
from shared_events.events import UserDeleted, UserRegistered
from shared_events.parking import list_parked
from shared_events.store import ERASED_EMAIL, is_erased
from shared_events.topology import (
    ATTEMPT_HEADER,
    declare_exchange,
    declare_service_queues,
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)
from shared_runtime.db import create_engine, create_sessionmaker
from tests.support import AMQP_URL, database_url, eventually, migrate


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    migrate("order_service", "orders_test")


@pytest.fixture
async def orders() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url("orders_test"), pool_size=5)
    yield create_sessionmaker(engine)
    await engine.dispose()


def order_row(user_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "user_email": "ada@example.com",
        "idempotency_key": uuid.uuid4().hex,
        "request_fingerprint": "f",
        "status": Status.PENDING,
        "stock_status": "pending",
        "payment_status": "pending",
        "total_amount": Decimal("10.00"),
        "currency": "EUR",
        "shipping_address": {"name": "Ada Lovelace", "line1": "1 Road", "country": "GB"},
        "payment_method_id": "pm_card_visa",
        "deadline_at": datetime.now(UTC) + timedelta(minutes=30),
    }


async def stored(orders: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> list[Order]:
    async with orders() as session:
        return list(await session.scalars(sa.select(Order).where(Order.user_id == user_id)))


async def test_an_order_checked_before_the_erasure_commits_first_and_is_anonymised(orders):
    user_id = uuid.uuid4()
    async with orders() as placing:
        async with placing.begin():
            assert not await is_erased(placing, user_id)  # the person's lock, shared

            async def erase() -> None:
                async with orders() as erasing, erasing.begin():
                    await erase_customer(erasing, UserDeleted(user_id=user_id))

            erasure = asyncio.create_task(erase())
            await asyncio.sleep(0.3)
            assert not erasure.done()  # it waits for the order's transaction
            await placing.execute(ORDERS.insert().values(order_row(user_id)))
        await asyncio.wait_for(erasure, 5)
    [order] = await stored(orders, user_id)
    assert order.user_email == ERASED_EMAIL
    assert order.shipping_address == {"erased": True, "country": "GB"}


async def test_an_order_checked_after_the_erasure_began_sees_it_and_is_refused(orders):
    user_id = uuid.uuid4()
    async with orders() as erasing:
        async with erasing.begin():
            await erase_customer(erasing, UserDeleted(user_id=user_id))

            async def check() -> bool:
                async with orders() as placing, placing.begin():
                    return await is_erased(placing, user_id)

            placing = asyncio.create_task(check())
            await asyncio.sleep(0.3)
            assert not placing.done()  # it waits for the erasure to commit
        assert await asyncio.wait_for(placing, 5) is True
    assert await stored(orders, user_id) == []


def about(user_id: uuid.UUID, tag: str) -> UserRegistered:
    return UserRegistered(user_id=user_id, email=f"{tag}@example.com", full_name="Ada Lovelace")


async def put(channel: Any, queue: str, body: bytes, message_id: str) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(
            body,
            message_id=message_id,
            type="UserRegistered",
            content_type="application/json",
            headers={ATTEMPT_HEADER: 3, "x-error": "SendGrid answered 503"},
        ),
        routing_key=queue,
    )


async def bodies(queue: str) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Every message waiting in ``queue`` by id, left where it is."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        found = {}
        q = await channel.get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=False, fail=False)) is not None:
            found[message.message_id] = (message.body, dict(message.headers or {}))
        await channel.close()
    return found


async def test_waiting_messages_about_an_erased_person_are_anonymised(bus, names):
    service = names["service"]
    channel = await bus.connection.channel()
    exchange = await declare_exchange(channel, bus.exchange_name)
    # Retries a minute apart: nothing leaves its retry queue while the test looks.
    delays = retry_delays_ms(3, 60_000)
    await declare_service_queues(
        channel, exchange=exchange, service=service, routing_keys=[], max_attempts=3,
        base_delay_ms=60_000,
    )  # fmt: skip
    erased, other = uuid.uuid4(), uuid.uuid4()
    parked, retry = parked_queue_name(service), retry_queue_name(service, delays[-1])
    await put(channel, parked, about(erased, "gone").to_json(), "p-erased")
    await put(channel, parked, about(other, "stays").to_json(), "p-other")
    await put(channel, parked, b"not json", "p-garbage")
    await put(channel, retry, about(erased, "gone-too").to_json(), "r-erased")

    queues = [retry_queue_name(service, d) for d in delays] + [parked]
    try:
        assert await scrub(bus.connection, queues, erased) == 2
        assert await scrub(bus.connection, queues, erased) == 0  # nothing of them is left
        waiting = await bodies(parked)
        [(retried, _)] = (await bodies(retry)).values()
    finally:
        for name in queues[:-1]:
            await channel.queue_delete(name)

    assert set(waiting) == {"p-erased", "p-other", "p-garbage"}
    body, headers = waiting["p-erased"]
    assert json.loads(body)["email"] == ERASED_EMAIL and json.loads(body)["fullName"] == "(erased)"
    assert json.loads(body)["userId"] == str(erased)  # still the same event, for a replay
    assert headers["x-error"] == "SendGrid answered 503" and headers[ATTEMPT_HEADER] == 3
    assert json.loads(waiting["p-other"][0])["email"] == "stays@example.com"
    assert waiting["p-garbage"][0] == b"not json"
    assert json.loads(retried)["email"] == ERASED_EMAIL
    await channel.close()


async def test_every_consumer_anonymises_its_waiting_messages_on_user_deleted(bus, names):
    """A service with no UserDeleted handler of its own (and no database) still sweeps."""
    consumer = EventConsumer(
        service=names["service"], bus=bus, sessionmaker=None, handlers={}, base_delay_ms=200
    )
    await consumer.start()
    try:
        erased = uuid.uuid4()
        channel = await bus.connection.channel()
        parked = parked_queue_name(names["service"])
        await put(channel, parked, about(erased, "swept").to_json(), "p-swept")
        await channel.close()
        deleted = UserDeleted(user_id=erased)
        await bus.publish(
            body=deleted.to_json(),
            event_type=deleted.event_type(),
            message_id=str(deleted.id),
            routing_key=deleted.routing_key,
            correlation_id=str(erased),
            headers={},
        )

        async def parked_email() -> str:
            [message] = await list_parked(AMQP_URL, names["service"])
            return str(json.loads(message.body)["email"])

        await eventually(parked_email, until=lambda email: email == ERASED_EMAIL, timeout=10)
    finally:
        await consumer.stop()
