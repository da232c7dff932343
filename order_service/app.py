"""create_app(): order_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from order_service.api import router
from order_service.handlers import build_handlers
from order_service.live import OrderChanges
from order_service.sweeper import DeadlineSweeper
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings

ME = SERVICES["order_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    cart_service_url: str = SERVICES["cart_service"].internal_url()
    saga_deadline_s: int = 1800
    sweep_interval_s: float = 5.0
    # Live order streams (GET /orders/{id}/events): open at once per customer, and in all,
    # per process.
    streams_per_user: int = Field(5, ge=1, le=100)
    streams_in_all: int = Field(2000, ge=1, le=100_000)
    stream_keep_alive_s: float = Field(15.0, gt=0, le=60)


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.sweeper = DeadlineSweeper(app.state.sessionmaker, settings.sweep_interval_s)
    app.state.sweeper.start()
    # LISTEN on the same connection string as the outbox relay's (asyncpg, no SQLAlchemy).
    app.state.order_changes = OrderChanges(
        app.state.relay.listen_dsn, settings.streams_per_user, settings.streams_in_all
    )
    app.state.order_changes.start()


async def _on_shutdown(app: FastAPI) -> None:
    await app.state.sweeper.stop()
    await app.state.order_changes.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="order_service",
        routers=[router],
        handlers=build_handlers,
        peers={"cart_service": settings.cart_service_url},
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
    )
