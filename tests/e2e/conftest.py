"""The whole system as `make dev` runs it, on ports, databases and a vhost of the tests' own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import redis
from playwright.async_api import Browser, Page, async_playwright

from scripts.stack import admin_token as make_admin_token
from shared_runtime.registry import SERVICES
from tests.fake_api import OtlpReceiver
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
    # Spans leave each service every half second (the `traces` fixture receives them).
    "OTEL_BSP_SCHEDULE_DELAY": "500",
    # Shoppers' catalog reads are kept by the gateway this long (test_faults checks the cache).
    "PRODUCT_GATEWAY_FRESH_S": "1",
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


RUN_DIR = ROOT / ".run" / "test"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-password"
# What the tests sent that no log line may hold: every password, e-mail, phone, name and
# address line in a request body, and every token (collected by the gateway client below).
PERSONAL_KEYS = {"email", "password", "currentPassword", "newPassword", "phone", "fullName"}
PERSONAL_KEYS |= {"line1", "line2", "city", "postalCode", "accessToken"}
SENT: set[str] = {ADMIN_EMAIL, ADMIN_PASSWORD}


def _collect(value: object) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PERSONAL_KEYS and isinstance(item, str) and len(item) >= 6:
                SENT.add(item)
            _collect(item)
    elif isinstance(value, list):
        for item in value:
            _collect(item)


async def _record_request(request: httpx.Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        SENT.add(token)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            _collect(json.loads(request.content))
        except ValueError:
            pass


async def _record_response(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("application/json"):
        await response.aread()
        try:
            _collect(response.json())
        except ValueError:
            pass


_WORD = re.compile(r"[^\s\"',:;{}\[\]()=<>\\/?&]+")


def personal_data_in_logs() -> list[str]:
    """Each log line of the test stack (services, gateway) holding something in SENT.

    Thousands of values against tens of thousands of lines: a value that is one word is
    looked up among each line's words; only the few with spaces or separators are searched."""
    words = {value.lower() for value in SENT if _WORD.fullmatch(value)}
    phrases = [value.lower() for value in SENT if not _WORD.fullmatch(value)]
    found = []
    for log in sorted([*RUN_DIR.glob("logs/*.log"), *RUN_DIR.glob("nginx/*.log")]):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            lowered = line.lower()
            hits = words.intersection(_WORD.findall(lowered))
            hits |= {value for value in phrases if value in lowered}
            found += [f"{log.name}:{number}: {hit[:12]}…" for hit in hits]
    return found


@pytest.fixture(scope="session")
def traces() -> Iterator[OtlpReceiver]:
    """Where the test stack's services send their spans (OTLP/HTTP), kept for the tests."""
    receiver = OtlpReceiver()
    STACK_ENV["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def stack(traces: OtlpReceiver) -> Iterator[str]:
    stack_command("stop")
    # Every run starts from empty databases (then migrations and the demo catalog) and logs.
    asyncio.run(drop_databases([f"{name}{DB_SUFFIX}" for name in DATABASES]))
    redis.Redis.from_url(STACK_ENV["REDIS_URL"]).flushdb()
    for log in [*RUN_DIR.glob("logs/*.log"), *RUN_DIR.glob("nginx/*.log")]:
        log.unlink()
    stack_command("start")
    yield f"http://127.0.0.1:{GATEWAY_PORT}"
    stack_command("stop")  # nginx writes out its buffered access log
    leaks = personal_data_in_logs()
    assert not leaks, "personal data or secrets in the logs:\n" + "\n".join(leaks[:50])


@pytest.fixture
async def gateway(stack: str) -> AsyncIterator[httpx.AsyncClient]:
    hooks = {"request": [_record_request], "response": [_record_response]}
    async with httpx.AsyncClient(
        base_url=f"{stack}/api/v1", timeout=10, event_hooks=hooks
    ) as client:
        yield client


@pytest.fixture(scope="session")
def admin_token(stack: str) -> str:
    """An administrator made with the real CLI, logged in through the gateway."""
    env = dict(os.environ, USER_DATABASE_URL=f"{PG}/users{DB_SUFFIX}", **STACK_ENV)
    token = make_admin_token(f"{stack}/api/v1", ADMIN_EMAIL, ADMIN_PASSWORD, env)
    SENT.add(token)
    return token


USERS_DATABASE = f"users{DB_SUFFIX}"


@pytest.fixture
async def customer(stack: str) -> dict[str, str]:
    """The Authorization header of a new real customer of the test stack."""
    [headers] = await new_accounts(USERS_DATABASE)
    return headers


def service_url(service: str) -> str:
    """A service of the test stack on its public port: what the gateway reaches."""
    return f"http://127.0.0.1:{SERVICES[service].port + PORT_OFFSET}"


def internal_url(service: str) -> str:
    """A service of the test stack on its internal port: what the other services (and
    Prometheus) reach; /metrics and /internal/... are served there only."""
    return SERVICES[service].internal_url(PORT_OFFSET)


# The browser tests (tests/e2e/browser.py): Debian's Chromium (make test installs it), driven by
# Playwright; Playwright's own browser download is not used.
CHROMIUM = "/usr/bin/chromium"
SHOTS = RUN_DIR / "screenshots"
ORIGIN = f"http://127.0.0.1:{GATEWAY_PORT}"
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
async def browser(stack: str) -> AsyncIterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # No host but this one resolves: a font or script from elsewhere would fail.
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=ORIGIN, viewport=DESKTOP)
    page = await context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(ORIGIN) else elsewhere.append(request.url),
    )
    yield page
    await context.close()
    assert not elsewhere, f"requests outside the gateway: {elsewhere}"


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
