"""create_app(): notification_service's FastAPI app and its settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from notification_service.api import router
from notification_service.handlers import build_handlers
from notification_service.providers import (
    EmailProvider,
    SandboxEmailProvider,
    SandboxSmsProvider,
    SendGridEmailProvider,
    SmsProvider,
    TwilioSmsProvider,
)
from notification_service.service import Notifier
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings

ME = SERVICES["notification_service"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=f"{ME.env_prefix}_")

    service_name: str = ME.name
    port: int = ME.port
    database_url: str = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{ME.database}"
    shop_name: str = "Demo Shop"
    # Where the storefront is, as customers reach it: the links in e-mails open its pages.
    shop_url: str = "http://localhost:8080"
    email_from: str = "shop@example.com"
    sendgrid_api_key: str | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = Field("https://api.sendgrid.com", validation_alias="SENDGRID_API_HOST")
    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str = Field("+15005550006", validation_alias="TWILIO_FROM_NUMBER")
    twilio_api_base: str | None = Field(None, validation_alias="TWILIO_API_BASE")


async def _on_startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    email: EmailProvider = SandboxEmailProvider()
    if settings.sendgrid_api_key:
        email = SendGridEmailProvider(
            settings.sendgrid_api_key, settings.email_from, settings.sendgrid_api_host
        )
    sms: SmsProvider = SandboxSmsProvider()
    if settings.twilio_account_sid and settings.twilio_auth_token:
        sms = TwilioSmsProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_from_number,
            settings.twilio_api_base,
        )
    app.state.notifier = Notifier(email, sms, settings.shop_name, settings.shop_url)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="notification_service",
        routers=[router],
        handlers=build_handlers,
        on_startup=_on_startup,
    )
