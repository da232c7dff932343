"""create_app(): cart_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from cart_service.api import router
from cart_service.handlers import build_handlers
from cart_service.service import PRODUCT_PEER, Carts
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CART_")

    service_name: str = "cart_service"
    port: int = 5003
    product_service_url: str = "http://127.0.0.1:5002"
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
        uses_redis=True,
        uses_database=False,
        peers={PRODUCT_PEER: settings.product_service_url},
        on_startup=_on_startup,
    )
