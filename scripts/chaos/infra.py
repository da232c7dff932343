"""The chaos stack: its constants (ports, databases, vhost, Redis db, the signing key made
for this run), starting and stopping it with scripts/stack.py, preparing the broker, the
databases and Redis, and waiting for things to be ready."""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.stack import drop_databases as drop_stack_databases
from scripts.stack import fresh_vhost
from shared_runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]

NAME = "chaos"
GATEWAY_PORT = 28080
PORT_OFFSET = 20000
DB_SUFFIX = "_chaos"
VHOST = "ecommerce_chaos"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REDIS_URL = "redis://127.0.0.1:6379/13"
PG = "postgresql://postgres@127.0.0.1:5432"
API = f"http://127.0.0.1:{GATEWAY_PORT}/api/v1"
EXCHANGE = "ecommerce.events"
RUN = ROOT / ".run" / NAME
MAX_ATTEMPTS = 8
# The chaos stack's own signing key, made for this run.
SECRET = secrets.token_urlsafe(48)
STACK_ENV = {
    "JWT_SECRET": SECRET,
    "GATEWAY_API_RATE": "100000r/s",
    "USER_LOGIN_FAILURES_PER_IP": "100000",
    "REDIS_URL": REDIS_URL,
    "ORDER_SAGA_DEADLINE_S": "120",
    "MAX_DELIVERY_ATTEMPTS": str(MAX_ATTEMPTS),
}
STACK_ARGS = [
    "--name", NAME,
    "--gateway-port", str(GATEWAY_PORT),
    "--port-offset", str(PORT_OFFSET),
    "--db-suffix", DB_SUFFIX,
    "--amqp-url", AMQP_URL,
]  # fmt: skip
# Redis as scripts/bootstrap.sh starts it (no persistence locally).
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ecommerce.log",
]  # fmt: skip


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes and infrastructure -----------------------------------------------------------


def sh(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({result.returncode}): {result.stderr}")
    return result


def rabbitmqctl(*args: str) -> str:
    return sh("rabbitmqctl", "-q", *args).stdout


def stack_env() -> dict[str, str]:
    """The process environment for the chaos stack: the caller's, minus anything that could
    point a service at another stack's database or peers, plus STACK_ENV."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_DATABASE_URL", "_SERVICE_URL"))}
    env.update(STACK_ENV)
    return env


def stack(command: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), command, *STACK_ARGS],
        env=stack_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"stack.py {command} failed:\n{result.stdout}{result.stderr}")


def prepare_broker() -> None:
    """A clean vhost of our own: no parked messages or queues left by an earlier run."""
    fresh_vhost(VHOST)


async def drop_databases() -> None:
    await drop_stack_databases(DB_SUFFIX, PG)


def service_port(service: str) -> int:
    return SERVICES[service].port + PORT_OFFSET


def vhost_connections() -> set[str]:
    """The names (client address and port) of the AMQP connections in our vhost.

    list_connections lists every vhost's whatever -p says (a running dev stack's too), so the
    vhost column is asked for and compared."""
    out = rabbitmqctl("list_connections", "vhost", "name")
    rows = (line.split("\t", 1) for line in out.splitlines() if "->" in line)
    return {name.strip() for vhost, name in rows if vhost == VHOST}


def pg_version() -> str:
    """The cluster version as scripts/bootstrap.sh picks it: the newest in /etc/postgresql."""
    versions = [p.name for p in Path("/etc/postgresql").iterdir() if p.name[0].isdigit()]
    return max(versions, key=lambda v: [int(x) for x in v.split(".") if x.isdigit()])


def redis_up() -> bool:
    answer = sh("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping", check=False).stdout
    return answer.strip() == "PONG"


def start_redis() -> None:
    if redis_up():
        return
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    sh(*REDIS_START)


# --- polling --------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    interval: float = 0.25,
) -> bool:
    """Poll ``check`` until it holds or the deadline passes; a check that raises is False
    (a database or broker that is restarting), and the last such error is logged at the end."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            if await check():
                return True
        except Exception as exc:
            error = exc
        if time.monotonic() > deadline:
            if error is not None:
                log(f"gave up after {timeout:.0f} s; last error: {error!r}")
            return False
        await asyncio.sleep(interval)


async def query(database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(f"{PG}/{database}{DB_SUFFIX}", timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def all_ready(api: httpx.AsyncClient) -> bool:
    for service in SERVICES:
        response = await api.get(f"http://127.0.0.1:{service_port(service)}/ready", timeout=3)
        if response.status_code != 200:
            return False
    return True
