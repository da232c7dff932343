"""create_app(): payment_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from payment_service.api import router
from payment_service.handlers import build_handlers
from payment_service.providers import build_payment_provider
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings

ME = SERVICES["payment_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    stripe_api_key: str | None = Field(None, validation_alias="STRIPE_API_KEY")
    stripe_api_base: str | None = Field(None, validation_alias="STRIPE_API_BASE")


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.payment_provider = build_payment_provider(
        settings.stripe_api_key, settings.stripe_api_base
    )


async def _on_shutdown(app: FastAPI) -> None:
    close = getattr(app.state.payment_provider, "aclose", None)
    if close is not None:
        await close()


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="payment_service",
        routers=[router],
        handlers=build_handlers,
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
    )
