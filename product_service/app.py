"""create_app(): product_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from product_service.api import router
from product_service.cache import CatalogCache
from product_service.handlers import build_handlers
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings

ME = SERVICES["product_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    cache_ttl_s: int = 1800
    # How long the gateway may serve a catalog answer without asking again (PRODUCT_GATEWAY_
    # FRESH_S); past that, a stale one while it refreshes, or for up to cache_ttl_s if this
    # service cannot answer. At least 1: with 0 the gateway keeps nothing to fall back on.
    gateway_fresh_s: int = Field(2, ge=1, le=3600)
    import_max_bytes: int = 200 * 1024 * 1024


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.cache = CatalogCache(
        app.state.redis, ttl_s=settings.cache_ttl_s, service=settings.service_name
    )
    # Anonymous catalog answers are the same for everyone: the gateway may keep them.
    app.state.public_headers = {
        "Cache-Control": f"public, max-age={settings.gateway_fresh_s}, "
        f"stale-while-revalidate={settings.gateway_fresh_s}, "
        f"stale-if-error={settings.cache_ttl_s}"
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="product_service",
        routers=[router],
        handlers=build_handlers,
        uses_redis=ME.uses_redis,
        on_startup=_on_startup,
    )
