"""What the tests share: the test infrastructure, polling with a deadline, running an app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
# A vhost of the tests' own: a running dev stack never consumes their messages.
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/ecommerce_test")
AMQP_VHOST = AMQP_URL.rsplit("/", 1)[-1] or "/"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Where the integration tests' user_service publishes: an exchange no queue is bound to, so no
# registration of one test (its verification e-mail) reaches another test's notification
# service; the tests read what user_service emitted from its outbox. Every user_service on the
# users_test database must publish there: any of them may publish what another wrote.
UNROUTED_EXCHANGE = "test.user_service.unrouted"

T = TypeVar("T")


def database_url(name: str) -> str:
    return f"{PG}/{name}"


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(result)`` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {result!r}")
        await asyncio.sleep(interval)


def migrate(service: str, database: str) -> None:
    """Run the service's real Alembic migrations against a test database."""
    prefix = {
        "user_service": "USER",
        "product_service": "PRODUCT",
        "order_service": "ORDER",
        "payment_service": "PAYMENT",
        "notification_service": "NOTIFICATION",
    }[service]
    env = dict(os.environ, **{f"{prefix}_DATABASE_URL": database_url(database)})
    subprocess.run([sys.executable, "-m", service, "migrate"], env=env, cwd=ROOT, check=True)


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (db, bus, relay, consumer) and talk to it in-process, as the
    gateway does: on its public port (shared_runtime.ports), where X-Real-IP names the client."""
    port = app.state.settings.port
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://service:{port}"
        ) as client:
            yield client


def bearer(role: str = "customer", secret: str | None = None) -> dict[str, str]:
    """An Authorization header for a made-up account that no user_service knows: well signed
    with this run's key, and refused by every service (the account does not exist)."""
    from shared_runtime.auth import Claims, create_access_token

    secret = secret or os.environ["JWT_SECRET"]
    user_id = uuid.uuid4()
    claims = Claims(sub=user_id, email=f"{user_id.hex[:8]}@example.com", full_name="T", role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {create_access_token(claims, secret, 3600)}"}


async def new_accounts(
    users_database: str, count: int = 1, role: str = "customer"
) -> list[dict[str, str]]:
    """Authorization headers of ``count`` real accounts in ``users_database`` (e.g. users_e2e)."""
    from scripts.stack import insert_accounts, token_for

    dsn = database_url(users_database).replace("+asyncpg", "")
    claims = await insert_accounts(dsn, count, role=role, label="test")
    return [token_for(c, os.environ["JWT_SECRET"]) for c in claims]


def free_port() -> int:
    """A port no process listens on now, for a server a test starts."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """An app served by uvicorn on a real port, for the services that call it over HTTP; it
    can be stopped and started again (a new app from ``make_app`` each time).

    A service is served on its internal port (``port``: its settings' ``internal_port``),
    where the other services call it, as in production."""

    def __init__(self, make_app: Callable[[], FastAPI], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.make_app = make_app
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.make_app(), host="127.0.0.1", port=self.port, log_config=None)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await eventually(lambda: asyncio.sleep(0, result=self._server.started), timeout=15)

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def error_of(response: Any) -> dict[str, Any]:
    """The project's one error shape, checked, then its inner object."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


def restart_redis() -> None:
    """Shut the local Redis down (nothing saved) and start it again, as bootstrap.sh does."""
    subprocess.run(["redis-cli", "shutdown", "nosave"], check=False, capture_output=True)
    subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh")], check=True)
