"""Tokens can be revoked: a password change, a deactivation or a deletion refuses every token
issued before, in every service, within a few seconds, and a Redis restart brings none back."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import os
import re
import subprocess
import tokenize
import uuid

import httpx
from jose import jwt

from scripts.stack import admin_token as make_admin_token
from shared_runtime.auth import Claims, create_access_token
from tests.e2e.conftest import STACK_ENV, USERS_DATABASE
from tests.e2e.test_accounts import login, new_email, register
from tests.support import PG, ROOT, bearer, error_of, eventually, restart_redis

# One authenticated route of each service, and what a good customer token gets there.
ROUTES = [
    ("user_service", "GET", "/users/me", 200),
    ("product_service", "POST", "/products", 403),  # admins only: a live customer gets 403
    ("cart_service", "GET", "/cart", 200),
    ("order_service", "GET", "/orders", 200),
    ("payment_service", "GET", f"/payments?orderId={uuid.uuid4()}", 200),
    ("notification_service", "GET", "/notifications", 200),
]
# Revocation has to reach every process: each asks user_service at most every AUTH_CACHE_S (5).
WITHIN_S = 10


async def answers(gateway: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    """Per service: the status, or the error code of a 401."""
    found: dict[str, object] = {}
    for service, method, path, _ in ROUTES:
        response = await gateway.request(method, path, headers=headers, json={})
        found[service] = (
            error_of(response)["code"] if response.status_code == 401 else (response.status_code)
        )
    return found


async def accepted_everywhere(gateway: httpx.AsyncClient, headers: dict[str, str]) -> None:
    expected = {service: status for service, _, _, status in ROUTES}
    assert await answers(gateway, headers) == expected


async def refused_everywhere(gateway: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await eventually(
        lambda: answers(gateway, headers),
        until=lambda found: set(found.values()) == {"token_revoked"},
        timeout=WITHIN_S,
        interval=0.25,
        what="the old token refused by every service",
    )


async def customer(gateway: httpx.AsyncClient) -> tuple[str, dict[str, str], str]:
    email = new_email()
    user = await register(gateway, email)
    return email, {"Authorization": f"Bearer {await login(gateway, email)}"}, user["id"]


async def test_a_password_change_revokes_every_earlier_token(gateway):
    email, old, _ = await customer(gateway)
    await accepted_everywhere(gateway, old)

    wrong = await gateway.put(
        "/users/me/password",
        json={"currentPassword": "not-my-password", "newPassword": "a-new-password"},
        headers=old,
    )
    assert wrong.status_code == 403 and error_of(wrong)["code"] == "invalid_password"
    changed = await gateway.put(
        "/users/me/password",
        json={"currentPassword": "correct-horse", "newPassword": "a-new-password"},
        headers=old,
    )
    assert changed.status_code == 200, changed.text
    new = {"Authorization": f"Bearer {changed.json()['accessToken']}"}

    await refused_everywhere(gateway, old)
    await accepted_everywhere(gateway, new)
    refused = await gateway.post("/users/login", json={"email": email, "password": "correct-horse"})
    assert refused.status_code == 401
    await login(gateway, email, "a-new-password")

    # Nothing of the revocation lives in Redis: restarting it brings no token back.
    await asyncio.to_thread(restart_redis)
    assert set((await answers(gateway, old)).values()) == {"token_revoked"}
    await accepted_everywhere(gateway, new)


async def test_an_admin_deactivates_an_account_and_can_activate_it_again(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    email, token, user_id = await customer(gateway)
    await accepted_everywhere(gateway, token)

    by_customer = await gateway.post(f"/users/{user_id}/deactivate", headers=token)
    assert by_customer.status_code == 403
    unknown = await gateway.post(f"/users/{uuid.uuid4()}/deactivate", headers=admin)
    assert unknown.status_code == 404
    deactivated = await gateway.post(f"/users/{user_id}/deactivate", headers=admin)
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False

    await refused_everywhere(gateway, token)
    blocked = await gateway.post("/users/login", json={"email": email, "password": "correct-horse"})
    assert blocked.status_code == 403 and error_of(blocked)["code"] == "account_deactivated"

    activated = await gateway.post(f"/users/{user_id}/activate", headers=admin)
    assert activated.status_code == 200 and activated.json()["active"] is True
    await accepted_everywhere(gateway, {"Authorization": f"Bearer {await login(gateway, email)}"})
    # A token revoked by the deactivation stays revoked.
    assert set((await answers(gateway, token)).values()) == {"token_revoked"}


async def test_create_admin_on_an_existing_account_revokes_its_tokens(gateway, stack):
    """Recovery with the CLI: whoever held the account's tokens holds nothing afterwards."""
    email, old, _ = await customer(gateway)
    await accepted_everywhere(gateway, old)
    env = dict(os.environ, USER_DATABASE_URL=f"{PG}/{USERS_DATABASE}", **STACK_ENV)
    token = await asyncio.to_thread(
        make_admin_token, f"{stack}/api/v1", email, "a-recovered-password", env
    )
    await refused_everywhere(gateway, old)
    promoted = {"Authorization": f"Bearer {token}"}
    assert (await gateway.get("/users/me", headers=promoted)).json()["role"] == "admin"


async def test_deleting_an_account_needs_the_password_and_revokes_its_tokens(gateway):
    email, token, _ = await customer(gateway)
    await accepted_everywhere(gateway, token)

    wrong = await gateway.request(
        "DELETE", "/users/me", json={"password": "not-my-password"}, headers=token
    )
    assert wrong.status_code == 403
    assert (await gateway.get("/users/me", headers=token)).status_code == 200
    deleted = await gateway.request(
        "DELETE", "/users/me", json={"password": "correct-horse"}, headers=token
    )
    assert deleted.status_code == 204, deleted.text

    await refused_everywhere(gateway, token)
    gone = await gateway.post("/users/login", json={"email": email, "password": "correct-horse"})
    assert gone.status_code == 401


async def test_a_well_signed_token_of_an_account_that_never_existed_is_refused(gateway):
    assert set((await answers(gateway, bearer())).values()) == {"token_revoked"}
    assert set((await answers(gateway, bearer("admin"))).values()) == {"token_revoked"}


def repository_strings() -> set[str]:
    """Every string a reader of the repository could try as the key: each string literal of
    the Python code, each value in a config file, and the defaults earlier versions shipped."""
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = {"change-me-in-production", "change-me-jwt-secret", "secret", ""}
    for name in listed:
        path = ROOT / name
        if path.suffix == ".lock" or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if path.suffix == ".py":
            for token in tokenize.generate_tokens(io.StringIO(text).readline):
                if token.type == tokenize.STRING:
                    with contextlib.suppress(ValueError, SyntaxError):
                        value = ast.literal_eval(token.string)
                        if isinstance(value, str) and len(value) <= 200:
                            found.add(value)
        found |= {m.group(1) for m in re.finditer(r"[:=]\s*['\"]?([^'\"\s#]{1,200})", text)}
    return found


async def test_no_string_of_the_repository_signs_a_token_the_stack_accepts(gateway, admin_token):
    """An administrator's own claims, signed with each string a reader of the repository
    could try: every one is refused."""
    claims = Claims.model_validate(jwt.get_unverified_claims(admin_token))
    assert (await gateway.get("/users/me", headers=_bearer(admin_token))).status_code == 200
    candidates = sorted(repository_strings())
    assert len(candidates) > 1000
    limit = asyncio.Semaphore(32)

    async def accepted(key: str) -> str | None:
        forged = create_access_token(claims, key, 600)
        async with limit:
            answer = await gateway.get("/users/me", headers=_bearer(forged))
        return key if answer.status_code != 401 else None

    opened = [k for k in await asyncio.gather(*(accepted(k) for k in candidates)) if k]
    assert opened == []


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
