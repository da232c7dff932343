"""The services, in one place: what each is called, where it listens, what it keeps and whom it
calls. Adding a service is one entry here (and its package); make dev, the tests, the gateway,
backups, chaos and each service's settings read it."""

from __future__ import annotations

from dataclasses import dataclass

# Each service listens on two ports (shared_runtime.ports): its public one, which the gateway
# reaches, and an internal one this far above it, which the other services reach.
INTERNAL_PORT_STEP = 100


@dataclass(frozen=True)
class Service:
    name: str  # the Python package, and the name of its event queue
    port: int  # its public port under `make dev` (the tests and chaos add an offset)
    env_prefix: str  # of its own settings: ORDER_DATABASE_URL, ORDER_PORT, ...
    database: str | None  # its PostgreSQL database, if it has one
    uses_redis: bool = False
    calls: tuple[str, ...] = ()  # the services it calls over HTTP (besides user_service's tokens)

    @property
    def queue(self) -> str:
        return self.name

    @property
    def hostname(self) -> str:
        """Its name in docker-compose and Kubernetes (user-service)."""
        return self.name.replace("_", "-")

    @property
    def internal_port(self) -> int:
        """Where the other services call it under `make dev` (5101 for 5001)."""
        return self.port + INTERNAL_PORT_STEP

    def internal_url(self, port_offset: int = 0, host: str = "127.0.0.1") -> str:
        """Its internal port's URL: where the other services call it."""
        return f"http://{host}:{self.internal_port + port_offset}"

    def peer_setting(self) -> str:
        """The setting (without the caller's prefix) that says where other services call it."""
        return f"{self.name.upper()}_URL"


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("user_service", 5001, "USER", "users", uses_redis=True),
        Service("product_service", 5002, "PRODUCT", "products", uses_redis=True),
        Service("cart_service", 5003, "CART", None, uses_redis=True, calls=("product_service",)),
        Service("order_service", 5004, "ORDER", "orders", calls=("cart_service",)),
        Service("payment_service", 5005, "PAYMENT", "payments"),
        Service("notification_service", 5006, "NOTIFICATION", "notifications"),
    )
}
DATABASES = [s.database for s in SERVICES.values() if s.database]
