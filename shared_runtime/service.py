"""The one way a service process is built: create_service_app() wires the shared parts.

Each service's ``app.py`` calls it with its settings, routers and event handlers; the
lifespan makes the engine, Redis, the bus, the outbox relay and the consumer, keeps them on
``app.state`` and closes them on shutdown. Nothing is created at import time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis
import structlog
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from shared_events.bus import EventBus
from shared_events.consumer import EventConsumer, Handler
from shared_events.events import Event
from shared_events.relay import OutboxRelay
from shared_runtime import tracing
from shared_runtime.auth import USER_SERVICE, FetchTokenState, TokenStates, ask_user_service
from shared_runtime.backoffice import router as backoffice_router
from shared_runtime.db import create_engine, create_sessionmaker
from shared_runtime.discovery import Discovery, advertise_address
from shared_runtime.errors import ERROR_RESPONSES, install_error_handlers
from shared_runtime.health import ReadinessCheck, database_check, redis_check
from shared_runtime.health import router as health_router
from shared_runtime.log_shipping import LogShipper
from shared_runtime.logs import configure_logging, formatter
from shared_runtime.observability import RequestContextMiddleware, metrics_endpoint
from shared_runtime.peers import PeerClient
from shared_runtime.ports import PortsMiddleware, listening_sockets
from shared_runtime.settings import ServiceSettings

if TYPE_CHECKING:
    import uvicorn

log = structlog.get_logger(__name__)

HandlerFactory = Callable[[FastAPI], dict[type[Event], Handler]]
TokenStateFactory = Callable[[FastAPI], FetchTokenState]
Hook = Callable[[FastAPI], Awaitable[None]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: list[APIRouter],
    handlers: HandlerFactory | None = None,
    uses_redis: bool = False,
    uses_database: bool = True,
    peers: dict[str, str] | None = None,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    token_states: TokenStateFactory | None = None,
) -> FastAPI:
    """``token_states``: where the accounts' token states come from; by default user_service,
    which is then one of the peers (user_service itself reads its database)."""
    settings.check_secrets()
    if token_states is None:
        peers = {**(peers or {}), USER_SERVICE: settings.user_service_url}
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    tracer_provider = tracing.configure(settings.service_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        checks: dict[str, ReadinessCheck] = {}
        app.state.readiness_checks = checks
        app.state.sessionmaker = None
        async with contextlib.AsyncExitStack() as stack:
            if settings.elasticsearch_url:
                shipper = LogShipper(
                    settings.elasticsearch_url,
                    settings.service_name,
                    retention_days=settings.log_retention_days,
                )
                shipper.setFormatter(formatter(settings.service_name))
                logging.getLogger().addHandler(shipper)
                shipper.start()
                stack.push_async_callback(_detach, shipper)
            if uses_database:
                engine = create_engine(settings.database_url, settings.db_pool_size)
                tracing.instrument_engine(engine)
                stack.push_async_callback(engine.dispose)
                app.state.engine = engine
                app.state.sessionmaker = create_sessionmaker(engine)
                checks["database"] = database_check(engine)
            if uses_redis:
                pool = redis.BlockingConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=settings.redis_pool_size,
                    timeout=settings.redis_pool_timeout_s,
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                    # After a Redis restart every pooled connection is dead: the first command
                    # on each reconnects and tries once more, so no request pays for it.
                    retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=1),
                    retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                )
                app.state.redis = redis.Redis.from_pool(pool)
                stack.push_async_callback(app.state.redis.aclose)
                checks["redis"] = redis_check(app.state.redis)

            discovery = Discovery(
                peers or {},
                settings.consul_http_addr,
                token=settings.consul_http_token.get_secret_value() or None,
            )
            stack.push_async_callback(discovery.close)
            app.state.discovery = discovery
            if peers is not None:
                app.state.peers = PeerClient(
                    service=settings.service_name,
                    discovery=discovery,
                    timeout_s=settings.peer_timeout_s,
                    breaker_threshold=settings.breaker_threshold,
                    breaker_reset_s=settings.breaker_reset_s,
                )
                stack.push_async_callback(app.state.peers.close)
            fetch = token_states(app) if token_states else ask_user_service(app.state.peers)
            app.state.token_states = TokenStates(
                fetch, fresh_s=settings.auth_cache_s, stale_s=settings.auth_stale_s
            )

            bus = EventBus(settings.amqp_url, settings.events_exchange, settings.service_name)
            await bus.connect()
            stack.push_async_callback(bus.close)
            app.state.bus = bus
            checks["broker"] = bus.check

            if uses_database:
                relay = OutboxRelay(
                    service=settings.service_name,
                    bus=bus,
                    sessionmaker=app.state.sessionmaker,
                    database_url=settings.database_url,
                    batch_size=settings.outbox_batch_size,
                    poll_interval_s=settings.outbox_poll_interval_s,
                )
                relay.start()
                stack.push_async_callback(relay.stop)
                app.state.relay = relay

            if on_startup is not None:
                await on_startup(app)
            if on_shutdown is not None:
                stack.push_async_callback(on_shutdown, app)

            if handlers is not None:
                consumer = EventConsumer(
                    service=settings.service_name,
                    bus=bus,
                    sessionmaker=app.state.sessionmaker,
                    handlers=handlers(app),
                    prefetch=settings.consumer_prefetch,
                    concurrency=settings.consumer_concurrency,
                    batch_size=settings.consumer_batch_size,
                    batch_wait_ms=settings.consumer_batch_wait_ms,
                    max_attempts=settings.max_delivery_attempts,
                    base_delay_ms=settings.retry_base_delay_ms,
                )
                await consumer.start()
                stack.push_async_callback(consumer.stop)
                app.state.consumer = consumer

            # The internal port: peers find it in Consul (the gateway knows the public one).
            await discovery.register(
                settings.service_name,
                settings.advertise_address or advertise_address(),
                settings.internal_port,
            )
            stack.push_async_callback(discovery.deregister)
            # What exists now (modules, the app, clients) lives as long as the process: moved
            # out of the collector's sight, so a full collection walks only what requests made.
            # Before, each one walked every imported module's objects: a 127 ms pause every
            # 0.4 s in product_service under catalog load, its p99.
            gc.collect()
            gc.freeze()
            log.info("service_started", port=settings.port, internal_port=settings.internal_port)
            yield
            log.info("service_stopping")
            tracing.shutdown(tracer_provider)

    # Swagger UI (/docs) and ReDoc (/redoc) from files in the fastapi-offline package, not a
    # CDN; the gateway serves every service's under /api/v1/docs.
    app = FastAPIOffline(
        title=title,
        lifespan=lifespan,
        version="1.0.0",
        servers=[
            {"url": "/api/v1", "description": "through the gateway"},
            {"url": "/", "description": "this service directly"},
        ],
    )
    app.state.settings = settings
    # Inside RequestContextMiddleware (added after it), so a refusal has its request id and its
    # access line like any answer.
    app.add_middleware(
        PortsMiddleware, public_port=settings.port, internal_port=settings.internal_port
    )
    app.add_middleware(RequestContextMiddleware, service_name=settings.service_name)
    tracing.instrument_app(app)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(backoffice_router, responses=ERROR_RESPONSES)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router, responses=ERROR_RESPONSES)
    return app


async def _detach(shipper: LogShipper) -> None:
    logging.getLogger().removeHandler(shipper)
    await shipper.stop()


def _json_protocol_errors() -> type:
    """uvicorn's HTTP protocol, answering a request it cannot parse in the error shape.

    A request nginx lets through may still be one the service's parser refuses (a control
    character in a header value, raw UTF-8 in the path): uvicorn would answer it in plain
    text, outside the API's one error shape."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JsonErrorsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = BAD_REQUEST_BODY
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            head += [
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            ]
            head.append(
                b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % len(body)
            )
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return JsonErrorsProtocol


BAD_REQUEST_BODY = (
    b'{"error":{"code":"bad_request","message":"The request could not be understood.",'
    b'"details":null}}'
)


def serve(app: Any, settings: ServiceSettings) -> None:
    """Serve ``app`` on its public and its internal port (shared_runtime.ports), one server."""
    sockets = listening_sockets(settings)
    server_for(app).run(sockets=sockets)


def server_for(app: Any) -> uvicorn.Server:
    """The uvicorn server ``serve`` runs ``app`` with (on the sockets it is given)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=_json_protocol_errors(),
        log_config=None,
        access_log=False,
        # Whose address a request is, is PortsMiddleware's to say, by the port it came in on:
        # uvicorn would take X-Forwarded-For from any local peer, on either port.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        # nginx and the peer client drop idle connections sooner (4 s, 3 s): no reuse races.
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    # Long-lived responses (order_service's event streams) end themselves once the server
    # is shutting down (server.should_exit), instead of holding it for the graceful timeout.
    app.state.server = server
    return server
