"""create_app(): cart_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from cart_service.api import router
from cart_service.domain import PRODUCT_PEER, Carts
from cart_service.handlers import build_handlers
from shared_runtime.peers import PeerClient
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CART_")

    service_name: str = "cart_service"
    port: int = 5003
    product_service_url: str = "http://127.0.0.1:5002"
    cart_ttl_s: int = 7 * 24 * 3600
    peer_timeout_s: float = 2.0
    breaker_threshold: int = 5
    breaker_reset_s: float = 10.0


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.peers = PeerClient(
        service=settings.service_name,
        peers={PRODUCT_PEER: settings.product_service_url},
        timeout_s=settings.peer_timeout_s,
        breaker_threshold=settings.breaker_threshold,
        breaker_reset_s=settings.breaker_reset_s,
    )
    app.state.carts = Carts(app.state.redis, app.state.peers, settings.cart_ttl_s)


async def _on_shutdown(app: FastAPI) -> None:
    await app.state.peers.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="cart_service",
        routers=[router],
        handlers=build_handlers,
        uses_redis=True,
        uses_database=False,
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
    )
