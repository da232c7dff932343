"""create_app(): user_service's FastAPI app and its settings."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared_runtime.auth import FetchTokenState, TokenState
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings
from user_service.api import internal, router
from user_service.domain import ThrottleLimits
from user_service.service import token_state
from user_service.throttle import Allowances, LoginThrottle

ME = SERVICES["user_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    # Login throttling (domain.ThrottleLimits says what each does).
    login_failures_per_account_ip: int = Field(5, ge=1)
    login_failures_per_ip: int = Field(20, ge=1)
    login_failure_window_s: int = Field(900, ge=1)
    login_account_slow_after: int = Field(10, ge=1)
    login_account_delay_s: float = Field(1.0, gt=0)
    login_account_delay_cap_s: float = Field(30.0, gt=0)
    login_max_wait_s: float = Field(5.0, ge=0, le=30)


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    limits = ThrottleLimits(
        per_account_ip=settings.login_failures_per_account_ip,
        per_ip=settings.login_failures_per_ip,
        window_s=settings.login_failure_window_s,
        slow_after=settings.login_account_slow_after,
        delay_s=settings.login_account_delay_s,
        delay_cap_s=settings.login_account_delay_cap_s,
        max_wait_s=settings.login_max_wait_s,
    )
    app.state.login_throttle = LoginThrottle(app.state.redis, limits)
    app.state.allowances = Allowances(app.state.redis)


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
