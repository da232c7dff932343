"""The whole system as `make dev` runs it, on ports, databases and a vhost of the tests' own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis

from tests.support import AMQP_URL, ROOT

GATEWAY_PORT = 18080
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
    "_test",
    "--amqp-url",
    AMQP_URL,
]


# Redis database of the test stack, emptied at the start so throttling counters of an
# earlier run do not leak in. Every e2e request comes from 127.0.0.1, so the per-IP
# login limit is raised here; tests/integration checks that limit on its own.
STACK_ENV = {"REDIS_URL": "redis://127.0.0.1:6379/14", "USER_LOGIN_FAILURES_PER_IP": "100000"}


@pytest.fixture(scope="session")
def stack() -> Iterator[str]:
    env = dict(os.environ, **STACK_ENV)
    subprocess.run([*STACK, "stop", *STACK_ARGS], check=True, cwd=ROOT, env=env)
    redis.Redis.from_url(STACK_ENV["REDIS_URL"]).flushdb()
    subprocess.run([*STACK, "start", *STACK_ARGS], check=True, cwd=ROOT, env=env)
    yield f"http://127.0.0.1:{GATEWAY_PORT}"
    subprocess.run([*STACK, "stop", *STACK_ARGS], check=True, cwd=ROOT, env=env)


@pytest.fixture
async def gateway(stack: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{stack}/api/v1", timeout=10) as client:
        yield client


def service_url(port: int) -> str:
    return f"http://127.0.0.1:{port + PORT_OFFSET}"
