"""Settings from the environment: one base class, one subclass per service with its own prefix."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zxcvbn import zxcvbn

from shared_runtime.registry import INTERNAL_PORT_STEP, SERVICES

# HS256 keys shorter than the hash (32 bytes) are guessable offline from one token.
MIN_SECRET_BYTES = 32
# Words that mark a value copied from documentation.
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "placeholder", "example")
# What a signing key must have beyond its length: at least this many different characters, an
# estimated 10^30 guesses (about 100 bits) against zxcvbn's model of how people choose secrets
# (words, repeats, sequences, keyboard walks), and at most a quarter of it in dictionary words
# of four letters or more (in 300 random 64-character keys, never more than 5 characters were).
# A random key of 64 characters passes every time; one of 32 is refused about once in 5,000 (a
# run like "5678" or a word in it), with the advice to make one of 48 bytes.
MIN_DISTINCT_CHARACTERS = 10
MIN_GUESSES_LOG10 = 30.0
MAX_WORDS_SHARE = 0.25
_ZXCVBN_MAX_LENGTH = 72  # what zxcvbn reads (it refuses longer input)


class ConfigurationError(Exception):
    """A setting that must not be used: the service refuses to start and says which one."""


def entropy_problem(value: str) -> str | None:
    """Why ``value`` is guessable although long enough (few characters, a pattern, words)."""
    distinct = len(set(value))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return f"has too little entropy ({distinct} different characters)"
    estimate = zxcvbn(value[:_ZXCVBN_MAX_LENGTH])
    words = sum(
        len(match["token"])
        for match in estimate["sequence"]
        if match["pattern"] == "dictionary" and len(match["token"]) >= 4
    )
    if words > MAX_WORDS_SHARE * min(len(value), _ZXCVBN_MAX_LENGTH):
        return "has too little entropy (dictionary words)"
    if estimate["guesses_log10"] < MIN_GUESSES_LOG10:
        return "has too little entropy (repeats, sequences or common words)"
    return None


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot sign tokens (missing, short, a placeholder, guessable), or None.

    Whether it was committed to the repository is checked by the tests (tests/unit/
    test_secrets.py), not at every start."""
    if not value:
        return "is not set"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "is a placeholder"
    return entropy_problem(value)


class ServiceSettings(BaseSettings):
    """Fields every service has.

    Fields with a ``validation_alias`` are shared by all services and read without the
    service prefix (``AMQP_URL``, ``JWT_SECRET``, ...); the others carry the service's
    prefix (``USER_DATABASE_URL``, ``USER_PORT``, ...).
    """

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    # The public port (the gateway's) and the internal one (the other services'): both on
    # ``host``, served by one process (shared_runtime.ports). The internal one is the
    # registry's step above the public one unless set (docker-compose and Kubernetes: 8001).
    port: int = 8000
    internal_port: int = Field(default_factory=lambda data: data["port"] + INTERNAL_PORT_STEP)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    db_pool_size: int = 10
    # Used by `migrate` only: a role that may create the service's role and database, which
    # the service then owns alone (its DATABASE_URL connects as that role).
    database_admin_url: str | None = None

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    # Connections to Redis; a request finding them all busy waits its turn (up to the timeout)
    # instead of failing, so a burst from one client delays others a little, never fails them.
    redis_pool_size: int = Field(50, ge=1, le=10_000, validation_alias="REDIS_POOL_SIZE")
    redis_pool_timeout_s: float = Field(2.0, gt=0, validation_alias="REDIS_POOL_TIMEOUT_S")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URL")
    events_exchange: str = Field("ecommerce.events", validation_alias="EVENTS_EXCHANGE")
    consumer_prefetch: int = Field(100, ge=1, le=1000, validation_alias="CONSUMER_PREFETCH")
    # Handlers without a database (the cart's) run at most this many at once.
    consumer_concurrency: int = Field(8, ge=1, le=1000, validation_alias="CONSUMER_CONCURRENCY")
    # Deliveries handled in one transaction (one connection), and how long a batch waits to
    # fill once its first delivery is in (shared_events.consumer).
    consumer_batch_size: int = Field(50, ge=1, le=1000, validation_alias="CONSUMER_BATCH_SIZE")
    consumer_batch_wait_ms: float = Field(
        1.0, ge=0, le=1000, validation_alias="CONSUMER_BATCH_WAIT_MS"
    )
    max_delivery_attempts: int = Field(5, ge=1, le=20, validation_alias="MAX_DELIVERY_ATTEMPTS")
    retry_base_delay_ms: int = Field(1000, ge=10, validation_alias="RETRY_BASE_DELAY_MS")
    outbox_batch_size: int = Field(200, ge=1, le=5000, validation_alias="OUTBOX_BATCH_SIZE")
    outbox_poll_interval_s: float = Field(2.0, gt=0, validation_alias="OUTBOX_POLL_INTERVAL_S")

    # No default: every deployment makes its own (docs/operations.md, "Secrets").
    jwt_secret: SecretStr = Field(SecretStr(""), validation_alias="JWT_SECRET")
    jwt_ttl_seconds: int = Field(24 * 3600, validation_alias="JWT_TTL_SECONDS")
    # Revocation (shared_runtime.auth): how long an account's token state is trusted before
    # user_service is asked again, and how long a known one serves while it cannot answer.
    auth_cache_s: float = Field(5.0, ge=0, le=60, validation_alias="AUTH_CACHE_S")
    auth_stale_s: float = Field(600.0, ge=0, validation_alias="AUTH_STALE_S")
    user_service_url: str = Field(
        SERVICES["user_service"].internal_url(), validation_alias="USER_SERVICE_URL"
    )

    # Calls to other services (shared_runtime.peers): per service, with its prefix.
    peer_timeout_s: float = 2.0
    breaker_threshold: int = 5
    breaker_reset_s: float = 10.0

    consul_http_addr: str | None = Field(None, validation_alias="CONSUL_HTTP_ADDR")
    # The ACL token this instance registers and looks peers up with (docker-compose gives each
    # service its own, allowed to register that service and to read its peers alone).
    consul_http_token: SecretStr = Field(SecretStr(""), validation_alias="CONSUL_HTTP_TOKEN")
    # The address other instances reach this one at; found from the hostname when unset.
    advertise_address: str | None = Field(None, validation_alias="SERVICE_ADVERTISE_ADDRESS")
    elasticsearch_url: str | None = Field(None, validation_alias="ELASTICSEARCH_URL")
    # Days a day's log index is kept in Elasticsearch (its lifecycle policy deletes it then).
    log_retention_days: int = Field(30, ge=1, le=3650, validation_alias="LOG_RETENTION_DAYS")

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")

    @model_validator(mode="after")
    def _two_ports(self) -> Self:
        if self.internal_port == self.port:
            raise ValueError(f"the internal port must not be the public one ({self.port})")
        return self

    def check_secrets(self) -> None:
        """Refuse to run with a signing key anyone could know."""
        problem = secret_problem(self.jwt_secret.get_secret_value())
        if problem is not None:
            raise ConfigurationError(
                f"JWT_SECRET {problem}; generate one with: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
