"""Fixtures on the real PostgreSQL and RabbitMQ: an events database, a bus, a consumer kit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

import aio_pika
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared_events import store
from shared_events.bus import EventBus
from shared_events.topology import (
    declare_exchange,
    declare_service_queues,
    parked_queue_name,
    retry_delays_ms,
    retry_queue_name,
)
from shared_runtime.db import create_engine, create_sessionmaker
from shared_runtime.migrate import ensure_database
from shared_runtime.registry import SERVICES
from tests.support import (
    AMQP_URL,
    REDIS_URL,
    ROOT,
    UNROUTED_EXCHANGE,
    Served,
    database_url,
    free_port,
    migrate,
    new_accounts,
)
from user_service.app import Settings as UserSettings
from user_service.app import create_app as create_user_app

USERS_DATABASE = "users_test"

# What the test handlers do: one row per handled event, no unique key, so a
# duplicate effect would show as a second row.
effects_metadata = sa.MetaData()
effects = sa.Table(
    "effects",
    effects_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
)


@pytest.fixture(scope="session")
def events_database_url() -> str:
    url = database_url("events_test")
    asyncio.run(ensure_database(url))
    return url


@pytest.fixture
async def sessionmaker(events_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(events_database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(store.metadata.create_all)
        await conn.run_sync(effects_metadata.create_all)
        await conn.execute(sa.text("TRUNCATE outbox, inbox, effects"))
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def names() -> dict[str, str]:
    """Exchange and service names of this test alone, so tests never see each other's messages."""
    suffix = uuid.uuid4().hex[:8]
    return {"exchange": f"test.events.{suffix}", "service": f"test_service_{suffix}"}


@pytest.fixture
async def bus(names: dict[str, str]) -> AsyncIterator[EventBus]:
    bus = EventBus(AMQP_URL, names["exchange"], f"test-{names['service']}")
    await bus.connect()
    yield bus
    await bus.close()
    # Remove what the test declared.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        service = names["service"]
        queues = [service, parked_queue_name(service)]
        queues += [retry_queue_name(service, d) for d in retry_delays_ms(5, 100)]
        queues += [retry_queue_name(service, d) for d in retry_delays_ms(5, 200)]
        for queue in queues:
            await channel.queue_delete(queue)
        await channel.exchange_delete(names["exchange"])


class ServiceQueues(NamedTuple):
    channel: aio_pika.abc.AbstractChannel
    exchange: aio_pika.abc.AbstractExchange
    declare: Callable[[], Awaitable[aio_pika.abc.AbstractQueue]]


@pytest.fixture
async def service_queues(bus: EventBus, names: dict[str, str]) -> AsyncIterator[ServiceQueues]:
    """A channel and the test exchange; ``declare()`` declares the test service's queues as
    its consumer does (5 attempts, 100 ms base delay), again each time it is called."""
    channel = await bus.connection.channel()
    exchange = await declare_exchange(channel, names["exchange"])

    async def declare() -> aio_pika.abc.AbstractQueue:
        return await declare_service_queues(
            channel,
            exchange=exchange,
            service=names["service"],
            routing_keys=["order.created"],
            max_attempts=5,
            base_delay_ms=100,
        )

    yield ServiceQueues(channel, exchange, declare)
    if not channel.is_closed:
        await channel.close()


@pytest.fixture
async def probe(bus: EventBus) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue bound to every routing key of the test exchange: what was really published."""
    channel = await bus.connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(bus.exchange_name, routing_key="#")
    yield queue
    await channel.close()


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[aio_pika.abc.AbstractIncomingMessage]:
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    return messages


@pytest.fixture(scope="session")
async def user_service() -> AsyncIterator[str]:
    """A real user_service on a real port: every service asks it whether a token is still
    good. Its URL goes into the Settings of the apps under test (``user_service_url``)."""
    migrate("user_service", USERS_DATABASE)
    port = free_port()
    settings = UserSettings(
        database_url=database_url(USERS_DATABASE),
        redis_url=REDIS_URL,
        amqp_url=AMQP_URL,
        events_exchange=UNROUTED_EXCHANGE,
        internal_port=port,
    )
    server = Served(lambda: create_user_app(settings), port)
    await server.start()
    yield server.url
    await server.stop()


@pytest.fixture
async def customer(user_service: str) -> dict[str, str]:
    """The Authorization header of a new real customer account."""
    [headers] = await new_accounts(USERS_DATABASE)
    return headers


@pytest.fixture
async def admin(user_service: str) -> dict[str, str]:
    [headers] = await new_accounts(USERS_DATABASE, role="admin")
    return headers


@pytest.fixture(scope="session", autouse=True)
def no_test_stack_running() -> None:
    """A test stack left over from an aborted run would consume these tests' messages,
    and messages left in the services' test queues would reach these tests."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), "stop", "--name", "test"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )

    async def delete_service_queues() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            for queue in SERVICES:
                await channel.queue_delete(queue)

    asyncio.run(delete_service_queues())
