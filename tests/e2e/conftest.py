"""The whole system as `make dev` runs it, on ports, databases and a vhost of the tests' own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import redis

from scripts.stack import admin_token as make_admin_token
from tests.support import AMQP_URL, PG, ROOT, new_accounts

GATEWAY_PORT = 18080
DB_SUFFIX = "_e2e"
DATABASES = ["users", "products", "orders", "payments", "notifications"]
PORT_OFFSET = 10000
STACK = [sys.executable, str(ROOT / "scripts" / "stack.py")]
STACK_ARGS = [
    "--name",
    "test",
    "--gateway-port",
    str(GATEWAY_PORT),
    "--port-offset",
    str(PORT_OFFSET),
    "--db-suffix",
    DB_SUFFIX,
    "--amqp-url",
    AMQP_URL,
]


# Redis database of the test stack, emptied at the start so throttling counters of an
# earlier run do not leak in. Every e2e request comes from 127.0.0.1, so the per-IP
# login limit is raised here; tests/integration checks that limit on its own.
STACK_ENV = {
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "USER_LOGIN_FAILURES_PER_IP": "100000",
    # The tests poll fast from one address; login and registration keep a (looser) limit,
    # which test_gateway checks.
    "GATEWAY_API_RATE": "100000r/s",
    "GATEWAY_AUTH_RATE": "20r/s",
}


async def drop_databases(names: list[str]) -> None:
    conn = await asyncpg.connect(PG.replace("+asyncpg", "") + "/postgres")
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def stack_command(command: str) -> None:
    """scripts/stack.py start|stop for the test stack (start: whatever is not running)."""
    env = dict(os.environ, **STACK_ENV)
    subprocess.run([*STACK, command, *STACK_ARGS], check=True, cwd=ROOT, env=env)


@pytest.fixture(scope="session")
def stack() -> Iterator[str]:
    stack_command("stop")
    # Every run starts from empty databases (then migrations and the demo catalog).
    asyncio.run(drop_databases([f"{name}{DB_SUFFIX}" for name in DATABASES]))
    redis.Redis.from_url(STACK_ENV["REDIS_URL"]).flushdb()
    stack_command("start")
    yield f"http://127.0.0.1:{GATEWAY_PORT}"
    stack_command("stop")


@pytest.fixture
async def gateway(stack: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{stack}/api/v1", timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def admin_token(stack: str) -> str:
    """An administrator made with the real CLI, logged in through the gateway."""
    env = dict(os.environ, USER_DATABASE_URL=f"{PG}/users{DB_SUFFIX}", **STACK_ENV)
    return make_admin_token(f"{stack}/api/v1", "admin@example.com", "admin-password", env)


USERS_DATABASE = f"users{DB_SUFFIX}"


@pytest.fixture
async def customer(stack: str) -> dict[str, str]:
    """The Authorization header of a new real customer of the test stack."""
    [headers] = await new_accounts(USERS_DATABASE)
    return headers


def service_url(port: int) -> str:
    return f"http://127.0.0.1:{port + PORT_OFFSET}"


@pytest.fixture(autouse=True)
async def saga_invariants(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After every end-to-end test: the invariants of the order saga hold."""
    yield
    if "stack" not in request.fixturenames:
        return
    from scripts.verify import verify
    from tests.support import eventually

    report = await eventually(
        lambda: verify(DB_SUFFIX, settled=True),
        until=lambda r: not r.violations,
        timeout=15,
        interval=0.25,
        what="the saga invariants",
    )
    assert report.counts["products"] > 0
