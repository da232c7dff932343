"""user_service and notification_service in-process, on the real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from notification_service.app import Settings as NotificationSettings
from notification_service.app import create_app as create_notification_app
from notification_service.models import Contact, Delivery
from shared_events.events import EmailVerified, UserDeleted, UserRegistered
from shared_events.store import add_event
from tests.fake_api import FakeApi, Reply
from tests.support import (
    AMQP_URL,
    REDIS_URL,
    UNROUTED_EXCHANGE,
    database_url,
    error_of,
    eventually,
    migrate,
    rabbitmqctl,
    running,
)
from user_service.app import Settings as UserSettings
from user_service.app import create_app as create_user_app


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    migrate("user_service", "users_test")
    migrate("notification_service", "notifications_test")


def user_settings(**overrides: Any) -> UserSettings:
    """user_service in-process, publishing to ``UNROUTED_EXCHANGE``."""
    values = {
        "database_url": database_url("users_test"),
        "redis_url": REDIS_URL,
        "amqp_url": AMQP_URL,
        "events_exchange": UNROUTED_EXCHANGE,
        "service_name": "user_service",
    } | overrides
    return UserSettings(**values)


def notification_settings(**overrides: Any) -> NotificationSettings:
    values = {
        "database_url": database_url("notifications_test"),
        "amqp_url": AMQP_URL,
        "retry_base_delay_ms": 100,
        "service_name": "notification_service",
    } | overrides
    return NotificationSettings(**values)


# --- SendGrid's API, as documented: POST /v3/mail/send -> 202 with X-Message-Id ----------


class FakeSendGrid(FakeApi):
    """Checks what the SendGrid SDK sends and answers like SendGrid: 202 with X-Message-Id."""

    def __init__(self, failures_before_success: int = 0) -> None:
        super().__init__()
        self.failures_left = failures_before_success

    def answer(self, request: dict[str, Any]) -> Reply:
        if self.failures_left > 0:
            self.failures_left -= 1
            return 500, {"errors": [{"message": "Internal error", "field": None}]}, {}
        if request["headers"].get("Authorization") != "Bearer SG.test-key":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return 401, {"errors": [{"message": message}]}, {}
        return 202, None, {"X-Message-Id": f"sg-{len(self.requests)}"}


async def purge_notification_queue() -> None:
    """notification_service's queue emptied of what other tests (or an earlier run) left
    there: only a test's own messages reach its fake SendGrid."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
            await (await channel.declare_queue("notification_service", passive=True)).purge()


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    await purge_notification_queue()
    fake = FakeSendGrid(failures_before_success=2)
    yield fake
    fake.close()


async def deliveries_for(app: Any, user_id: uuid.UUID) -> list[Delivery]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(sa.select(Delivery).where(Delivery.user_id == user_id))
        return list(rows)


async def test_welcome_email_is_retried_through_sendgrid_and_sent_once(sendgrid: FakeSendGrid):
    """The welcome e-mail, sent once the address is verified (EmailVerified)."""
    app = create_notification_app(
        notification_settings(sendgrid_api_key="SG.test-key", sendgrid_api_host=sendgrid.url)
    )
    user_id = uuid.uuid4()
    event = EmailVerified(user_id=user_id, email="ada@example.com", full_name="Ada Lovelace")
    async with running(app):
        async with app.state.sessionmaker() as session, session.begin():
            await add_event(session, event)
        [delivery] = await eventually(lambda: deliveries_for(app, user_id), timeout=10)
        assert delivery.status == "delivered"
        assert delivery.attempts == 3  # two 500s, then accepted
        assert delivery.provider == "sendgrid"
        assert delivery.provider_message_id == "sg-3"

        # The same event again: nothing is sent a second time.
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(sa.text("UPDATE outbox SET published_at = NULL"))
        await eventually(
            lambda: _outbox_sent(app), until=lambda sent: sent, what="republished event"
        )
        consumed = app.state.consumer
        await eventually(
            lambda: asyncio.sleep(0, result=_duplicates(consumed)), until=lambda n: n >= 1
        )
        assert len(await deliveries_for(app, user_id)) == 1

    assert len(sendgrid.requests) == 3
    request = sendgrid.requests[-1]
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key"
    mail = request["json"]
    assert mail["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert mail["from"]["email"] == "shop@example.com"
    assert mail["subject"] == "Welcome to Demo Shop, Ada Lovelace"
    assert mail["content"][0]["type"] == "text/plain"
    assert "Hello Ada Lovelace" in mail["content"][0]["value"]


async def _inbox_has(app: Any, event_id: uuid.UUID) -> bool:
    async with app.state.sessionmaker() as session:
        found = await session.scalar(
            sa.text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}
        )
        return bool(found)


async def test_a_registration_delivered_after_the_deletion_stores_and_sends_nothing(
    sendgrid: FakeSendGrid,
):
    """Events may arrive in any order: UserRegistered late, after UserDeleted, leaves neither
    a contact nor a message (the erasure's tombstone)."""
    sendgrid.failures_left = 0
    app = create_notification_app(
        notification_settings(sendgrid_api_key="SG.test-key", sendgrid_api_host=sendgrid.url)
    )
    user_id = uuid.uuid4()
    deleted = UserDeleted(user_id=user_id)
    late = UserRegistered(user_id=user_id, email="late@example.com", full_name="Late Comer")
    async with running(app):
        for event in (deleted, late):
            async with app.state.sessionmaker() as session, session.begin():
                await add_event(session, event)
            await eventually(lambda e=event: _inbox_has(app, e.id), what=f"{event} handled")
        async with app.state.sessionmaker() as session:
            contact = await session.get(Contact, user_id)
        assert contact is None
        assert await deliveries_for(app, user_id) == []
    assert sendgrid.requests == []


async def _outbox_sent(app: Any) -> bool:
    async with app.state.sessionmaker() as session:
        left = await session.scalar(
            sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
        return left == 0


def _duplicates(consumer: Any) -> float:
    labels = {"service": consumer.service, "event_type": "EmailVerified", "outcome": "duplicate"}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def test_sendgrid_refusal_is_a_provider_error(sendgrid: FakeSendGrid):
    from notification_service.providers import EmailMessage, ProviderError, SendGridEmailProvider

    sendgrid.failures_left = 0
    provider = SendGridEmailProvider("SG.wrong-key", "shop@example.com", sendgrid.url)
    with pytest.raises(ProviderError, match="401"):
        await provider.send(EmailMessage(to="a@example.com", subject="s", text="t"))


async def test_ready_names_the_broker_while_it_is_down_and_recovers():
    app = create_user_app(user_settings())
    async with running(app) as client:
        assert (await client.get("/ready")).status_code == 200
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        try:
            response = await eventually(
                lambda: client.get("/ready"), until=lambda r: r.status_code == 503, timeout=15
            )
            error = error_of(response)
            assert "broker" in error["message"]
            assert error["details"]["checks"]["broker"].startswith("down")
            assert error["details"]["checks"]["database"] == "ok"
            assert error["details"]["checks"]["redis"] == "ok"
            assert (await client.get("/health")).status_code == 200
        finally:
            await asyncio.to_thread(rabbitmqctl, "start_app")
        await eventually(
            lambda: client.get("/ready"), until=lambda r: r.status_code == 200, timeout=30
        )


async def test_ready_names_redis_when_it_is_unreachable():
    app = create_user_app(user_settings(redis_url="redis://127.0.0.1:1/0"))
    async with running(app) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert error_of(response)["details"]["checks"]["redis"].startswith("down")
