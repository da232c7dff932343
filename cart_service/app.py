"""create_app(): cart_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from cart_service.api import router
from cart_service.handlers import build_handlers
from cart_service.service import PRODUCT_PEER, Carts
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings

ME = SERVICES["cart_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    product_service_url: str = SERVICES["product_service"].internal_url()
    cart_ttl_s: int = 7 * 24 * 3600


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.carts = Carts(app.state.redis, app.state.peers, settings.cart_ttl_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="cart_service",
        routers=[router],
        handlers=build_handlers,
        uses_redis=ME.uses_redis,
        uses_database=ME.database is not None,
        peers={PRODUCT_PEER: settings.product_service_url},
        on_startup=_on_startup,
    )
