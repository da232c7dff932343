"""Login throttling on the real Redis (user_service in-process): what one client address guesses
locks out that address alone, parallel guesses all count, and an account guessed at from
everywhere is slowed, never locked against its owner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.integration.test_services import user_settings
from tests.support import error_of, running
from user_service.app import create_app as create_user_app
from user_service.throttle import LoginThrottle

PASSWORD = "correct-horse-battery"


@pytest.fixture
async def forget_counts() -> None:
    """No count of an earlier run (they live 15 minutes) leaks into these tests."""
    app = create_user_app(user_settings())
    async with running(app):
        keys = [key async for key in app.state.redis.scan_iter(match="login-*")]
        if keys:
            await app.state.redis.delete(*keys)


@pytest.fixture
async def user_service(forget_counts: None, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    overrides = getattr(request, "param", {})
    app = create_user_app(user_settings(**overrides))
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def registered(client: httpx.AsyncClient) -> str:
    email = f"throttle-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "fullName": "Ada Lovelace"}
    assert (await client.post("/users/register", json=body)).status_code == 201
    return email


async def login(client: httpx.AsyncClient, email: str, password: str, ip: str) -> httpx.Response:
    return await client.post(
        "/users/login", json={"email": email, "password": password}, headers={"X-Real-IP": ip}
    )


async def test_wrong_passwords_from_one_address_never_lock_the_owner_out(user_service):
    email = await registered(user_service)
    statuses = [
        (await login(user_service, email, "wrong-password", "203.0.113.10")).status_code
        for _ in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3
    # The guessing address is locked out of this account, even with the right password...
    assert (await login(user_service, email, PASSWORD, "203.0.113.10")).status_code == 429
    # ...its owner, from anywhere else, is not.
    assert (await login(user_service, email, PASSWORD, "198.51.100.7")).status_code == 200


async def test_parallel_guesses_from_one_address_all_count(user_service):
    email = await registered(user_service)
    answers = await asyncio.gather(
        *(login(user_service, email, f"wrong-{n}", "203.0.113.20") for n in range(20))
    )
    statuses = sorted(answer.status_code for answer in answers)
    # At most five passwords were checked; the others were refused before bcrypt ran.
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 15
    assert set(statuses) <= {401, 429}
    refused = next(a for a in answers if a.status_code == 429)
    assert error_of(refused)["code"] == "too_many_attempts"
    assert int(refused.headers["Retry-After"]) > 0


@pytest.mark.parametrize("user_service", [{"login_failures_per_ip": 3}], indirect=True)
async def test_one_address_guessing_many_accounts_is_locked_out_of_all(user_service):
    for _ in range(3):
        response = await login(user_service, f"{uuid.uuid4().hex}@example.com", "x", "203.0.113.30")
        assert response.status_code == 401
    email = await registered(user_service)
    locked = await login(user_service, email, PASSWORD, "203.0.113.30")
    assert locked.status_code == 429
    # Another client is not affected.
    assert (await login(user_service, email, PASSWORD, "198.51.100.30")).status_code == 200


@pytest.mark.parametrize(
    "user_service",
    [{"login_failures_per_account_ip": 2, "login_failure_window_s": 100}],
    indirect=True,
)
async def test_each_lockout_lasts_longer_than_the_last(user_service):
    email = await registered(user_service)
    redis = user_service.app.state.redis
    key = LoginThrottle.keys(email, "203.0.113.40")["account_ip"]
    assert email not in key
    ttls = []
    for _ in range(2):
        for _ in range(2):
            assert (await login(user_service, email, "nope", "203.0.113.40")).status_code == 401
        ttls.append(await redis.ttl(key))
        await redis.delete(key)  # as if the lockout had run out
    assert 90 < ttls[0] <= 100
    assert 190 < ttls[1] <= 200


def _under_attack() -> float:
    return REGISTRY.get_sample_value("login_accounts_under_attack_total") or 0.0


@pytest.mark.parametrize(
    "user_service",
    [{"login_account_slow_after": 3, "login_account_delay_s": 20, "login_max_wait_s": 0}],
    indirect=True,
)
async def test_an_account_guessed_at_from_many_addresses_is_slowed_not_locked(user_service):
    email = await registered(user_service)
    # The owner has logged in from home before.
    assert (await login(user_service, email, PASSWORD, "192.0.2.1")).status_code == 200
    alerts = _under_attack()
    for n in range(3):
        assert (await login(user_service, email, "guess", f"203.0.113.{50 + n}")).status_code == 401
    assert _under_attack() == alerts
    # Now each new address's check takes a turn, 20 s apart: one is checked (and the pattern
    # is said, once)...
    assert (await login(user_service, email, "guess", "203.0.113.60")).status_code == 401
    assert _under_attack() == alerts + 1
    # ...the next is told when its turn comes, whatever its password.
    for password in ("guess", PASSWORD):
        held = await login(user_service, email, password, "203.0.113.61")
        assert held.status_code == 429
        assert 1 <= int(held.headers["Retry-After"]) <= 20
    # The owner, from home, is not held at all.
    assert (await login(user_service, email, PASSWORD, "192.0.2.1")).status_code == 200


@pytest.mark.parametrize(
    "user_service",
    [{"login_account_slow_after": 3, "login_account_delay_s": 20, "login_max_wait_s": 0}],
    indirect=True,
)
async def test_guesses_sent_at_once_from_many_addresses_all_count_for_the_account(user_service):
    """Each attempt counts for the account before its password is checked: a burst from many
    addresses gets the threshold's checks and one turn, not one check per address."""
    email = await registered(user_service)
    answers = await asyncio.gather(
        *(login(user_service, email, f"guess-{n}", f"198.18.0.{n}") for n in range(1, 21))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(401) <= 4  # three before the threshold, then one turn
    assert statuses.count(429) >= 16


@pytest.mark.parametrize(
    "user_service",
    [{"login_failures_per_account_ip": 3, "login_failure_window_s": 100}],
    indirect=True,
)
async def test_a_burst_that_reaches_a_limit_locks_it_once(user_service):
    email = await registered(user_service)
    redis = user_service.app.state.redis
    key = LoginThrottle.keys(email, "203.0.113.90")["account_ip"]
    answers = await asyncio.gather(
        *(login(user_service, email, "nope", "203.0.113.90") for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [401] * 3 + [429] * 7
    assert int(await redis.get(f"{key}:strikes")) == 1  # one lockout, not one per failure
    assert 90 < await redis.ttl(key) <= 100
