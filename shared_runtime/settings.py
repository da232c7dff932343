"""Settings from the environment: one base class, one subclass per service with its own prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Fields every service has.

    Fields with a ``validation_alias`` are shared by all services and read without the
    service prefix (``AMQP_URL``, ``JWT_SECRET``, ...); the others carry the service's
    prefix (``USER_DATABASE_URL``, ``USER_PORT``, ...).
    """

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    db_pool_size: int = 10

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URL")
    events_exchange: str = Field("ecommerce.events", validation_alias="EVENTS_EXCHANGE")
    consumer_prefetch: int = Field(100, ge=1, le=1000, validation_alias="CONSUMER_PREFETCH")
    # Handlers run at once; keep it below db_pool_size so HTTP requests always find a connection.
    consumer_concurrency: int = Field(8, ge=1, le=1000, validation_alias="CONSUMER_CONCURRENCY")
    max_delivery_attempts: int = Field(5, ge=1, le=20, validation_alias="MAX_DELIVERY_ATTEMPTS")
    retry_base_delay_ms: int = Field(1000, ge=10, validation_alias="RETRY_BASE_DELAY_MS")
    outbox_batch_size: int = Field(200, ge=1, le=5000, validation_alias="OUTBOX_BATCH_SIZE")
    outbox_poll_interval_s: float = Field(2.0, gt=0, validation_alias="OUTBOX_POLL_INTERVAL_S")

    jwt_secret: str = Field("change-me-in-production", validation_alias="JWT_SECRET")
    jwt_ttl_seconds: int = Field(24 * 3600, validation_alias="JWT_TTL_SECONDS")

    # Calls to other services (shared_runtime.peers): per service, with its prefix.
    peer_timeout_s: float = 2.0
    breaker_threshold: int = 5
    breaker_reset_s: float = 10.0

    consul_http_addr: str | None = Field(None, validation_alias="CONSUL_HTTP_ADDR")
    # The address other instances reach this one at; found from the hostname when unset.
    advertise_address: str | None = Field(None, validation_alias="SERVICE_ADVERTISE_ADDRESS")
    elasticsearch_url: str | None = Field(None, validation_alias="ELASTICSEARCH_URL")

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")
