"""create_app(): product_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
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
    import_max_bytes: int = 200 * 1024 * 1024


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.cache = CatalogCache(
        app.state.redis, ttl_s=settings.cache_ttl_s, service=settings.service_name
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="product_service",
        routers=[router],
        handlers=build_handlers,
        uses_redis=ME.uses_redis,
        on_startup=_on_startup,
    )
