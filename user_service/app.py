"""create_app(): user_service's FastAPI app and its settings."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from shared_runtime.auth import FetchTokenState, TokenState
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings
from user_service.api import internal, router
from user_service.service import LoginThrottle, token_state

ME = SERVICES["user_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    login_failures_per_email: int = 5
    login_failures_per_ip: int = 20
    login_failure_window_s: int = 900


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.login_throttle = LoginThrottle(
        app.state.redis,
        per_email=settings.login_failures_per_email,
        per_ip=settings.login_failures_per_ip,
        window_s=settings.login_failure_window_s,
    )


def _token_states(app: FastAPI) -> FetchTokenState:
    """The source of truth checks tokens against its own database."""

    async def fetch(user_id: uuid.UUID) -> TokenState | None:
        async with app.state.sessionmaker() as session:
            return await token_state(session, user_id)

    return fetch


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="user_service",
        routers=[router, internal],
        uses_redis=ME.uses_redis,
        on_startup=_on_startup,
        token_states=_token_states,
    )
