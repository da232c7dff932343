"""The connection to RabbitMQ (aio-pika robust connection) and publishing with confirms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection

from shared_events.topology import declare_exchange

PUBLISH_TIMEOUT_S = 10.0


def event_message(
    body: bytes,
    event_type: str | None,
    message_id: str | None,
    correlation_id: str | None,
    headers: dict[str, Any],
    created_at: datetime | None,
    content_type: str | None = "application/json",
) -> aio_pika.Message:
    """An event as the broker carries it: persistent JSON, its id, type and correlation id.
    (A parked message is replayed as it came, whatever its content type.)"""
    return aio_pika.Message(
        body=body,
        content_type=content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=event_type,
        correlation_id=correlation_id,
        headers=headers,
        timestamp=created_at,
    )


class EventBus:
    """One robust connection per process: a confirming channel to publish, others to consume."""

    def __init__(self, amqp_url: str, exchange_name: str, connection_name: str) -> None:
        self.amqp_url = amqp_url
        self.exchange_name = exchange_name
        self.connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("EventBus.connect() was not called")
        return self._connection

    @property
    def exchange(self) -> AbstractExchange:
        if self._exchange is None:
            raise RuntimeError("EventBus.connect() was not called")
        return self._exchange

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.amqp_url,
            client_properties={"connection_name": self.connection_name},
            reconnect_interval=1,
            heartbeat=30,
        )
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        assert self._publish_channel is not None
        self._exchange = await declare_exchange(self._publish_channel, self.exchange_name)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def check(self) -> None:
        """Readiness: raise unless the connection to the broker is up right now."""
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            raise ConnectionError("broker unreachable")

    async def publish(
        self,
        *,
        body: bytes,
        event_type: str,
        message_id: str,
        routing_key: str,
        correlation_id: str | None,
        headers: dict[str, Any],
        created_at: datetime | None = None,
        exchange: AbstractExchange | None = None,
    ) -> None:
        """Publish one persistent message and return once the broker has confirmed it."""
        message = event_message(body, event_type, message_id, correlation_id, headers, created_at)
        # mandatory=False: an event nobody subscribes to yet is not an error.
        await (exchange or self.exchange).publish(
            message, routing_key=routing_key, mandatory=False, timeout=PUBLISH_TIMEOUT_S
        )

    async def default_exchange(self) -> AbstractExchange:
        """The default exchange on the confirming channel: publish straight to a named queue."""
        assert self._publish_channel is not None, "EventBus.connect() was not called"
        return self._publish_channel.default_exchange
