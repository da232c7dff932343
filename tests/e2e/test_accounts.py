"""Accounts, the verification and welcome e-mails and password resets, through the nginx
gateway, as a storefront would use them."""

from __future__ import annotations

import json
import os
import re
import uuid

import asyncpg
import httpx
import pytest
from jose import jwt

from tests.e2e.conftest import USERS_DATABASE, internal_url, service_url
from tests.support import PG, error_of, eventually
from user_service import links


def new_email() -> str:
    return f"Shopper.{uuid.uuid4().hex[:10]}@Example.com"


async def register(gateway: httpx.AsyncClient, email: str, password: str = "correct-horse") -> dict:
    response = await gateway.post(
        "/users/register", json={"email": email, "password": password, "fullName": "Sam Shopper"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def login(gateway: httpx.AsyncClient, email: str, password: str = "correct-horse") -> str:
    response = await gateway.post("/users/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


async def link_token(user_id: str, event_type: str) -> str:
    """The token of the newest link e-mailed to the account (what the e-mail's link holds),
    read from user_service's outbox."""
    conn = await asyncpg.connect(PG.replace("+asyncpg", "") + f"/{USERS_DATABASE}")
    try:
        payload = await conn.fetchval(
            "SELECT payload FROM outbox WHERE event_type = $1 AND payload ->> 'userId' = $2"
            " ORDER BY created_at DESC LIMIT 1",
            event_type,
            user_id,
        )
    finally:
        await conn.close()
    assert payload is not None, f"no {event_type} for {user_id}"
    return str(json.loads(payload)["token"])


async def test_register_verify_the_address_then_the_welcome_email(gateway: httpx.AsyncClient):
    email = new_email()
    user = await register(gateway, email)
    assert user["email"] == email.lower()
    assert user["fullName"] == "Sam Shopper"
    assert user["role"] == "customer"
    assert user["emailVerified"] is False
    assert "password" not in str(user).lower()

    login_response = await gateway.post(
        "/users/login", json={"email": email.upper(), "password": "correct-horse"}
    )
    assert login_response.status_code == 200
    body = login_response.json()
    assert body["tokenType"] == "bearer"
    assert body["expiresIn"] == 24 * 3600
    auth = {"Authorization": f"Bearer {body['accessToken']}"}

    me = await gateway.get("/users/me", headers=auth)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]

    # First only the e-mail that verifies the address: nothing in it is the registrant's.
    notifications = await eventually(
        lambda: gateway.get("/notifications", headers=auth),
        until=lambda r: r.status_code == 200 and r.json()["total"] == 1,
        timeout=2.0,
        what="the verification e-mail in the delivery log",
    )
    [verify] = notifications.json()["items"]
    assert (verify["channel"], verify["template"]) == ("email", "verify_email")
    assert verify["status"] == "delivered" and verify["attempts"] == 1
    assert verify["recipient"] == email.lower()
    assert "Sam" not in verify["subject"]

    token = await link_token(user["id"], "EmailVerificationRequested")
    verified = await gateway.post("/users/verify", json={"token": token})
    assert verified.status_code == 200 and verified.json()["emailVerified"] is True
    notifications = await eventually(
        lambda: gateway.get("/notifications", headers=auth),
        until=lambda r: r.json()["total"] == 2,
        what="the welcome e-mail once verified",
    )
    welcome = next(n for n in notifications.json()["items"] if n["template"] == "welcome")
    assert welcome["recipient"] == email.lower() and "Sam Shopper" in welcome["subject"]
    assert (await gateway.get("/users/me", headers=auth)).json()["emailVerified"] is True


async def test_a_name_that_is_a_link_or_an_address_is_refused(gateway: httpx.AsyncClient):
    for name in ["Win a prize at evil.example/claim", "ada@example.com", "Ada\u2028Lovelace"]:
        body = {"email": new_email(), "password": "correct-horse", "fullName": name}
        refused = await gateway.post("/users/register", json=body)
        assert refused.status_code == 422, name
        assert error_of(refused)["details"][0]["field"] == "fullName"


async def test_a_forgotten_password_is_reset_by_a_link_that_works_once(gateway: httpx.AsyncClient):
    email = new_email()
    user = await register(gateway, email)
    old = {"Authorization": f"Bearer {await login(gateway, email)}"}
    known = await gateway.post("/users/password-reset", json={"email": email})
    unknown = await gateway.post("/users/password-reset", json={"email": new_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    token = await link_token(user["id"], "PasswordResetRequested")  # committed with the 202
    expired = links.sign(
        "password-reset", uuid.UUID(user["id"]), "any", os.environ["JWT_SECRET"], -1
    )
    for bad in (expired.token, "not-a-token"):
        refused = await gateway.post(
            "/users/password-reset/confirm", json={"token": bad, "newPassword": "new-horse-1"}
        )
        assert refused.status_code == 400 and error_of(refused)["code"] == "link_invalid"

    body = {"token": token, "newPassword": "new-horse-1"}
    assert (await gateway.post("/users/password-reset/confirm", json=body)).status_code == 204
    again = await gateway.post("/users/password-reset/confirm", json=body)
    assert again.status_code == 400 and error_of(again)["code"] == "link_invalid"
    await eventually(
        lambda: gateway.get("/cart", headers=old),
        until=lambda r: r.status_code == 401,
        timeout=10,
        what="the old token refused",
    )
    await login(gateway, email, "new-horse-1")


async def test_notifications_are_the_callers_own(gateway: httpx.AsyncClient):
    first, second = new_email(), new_email()
    await register(gateway, first)
    await register(gateway, second)
    auth = {"Authorization": f"Bearer {await login(gateway, first)}"}
    response = await eventually(
        lambda: gateway.get("/notifications", headers=auth),
        until=lambda r: r.json().get("total") == 1,
    )
    assert {item["recipient"] for item in response.json()["items"]} == {first.lower()}


async def test_duplicate_email_is_a_conflict(gateway: httpx.AsyncClient):
    email = new_email()
    await register(gateway, email)
    response = await gateway.post(
        "/users/register",
        json={"email": email.lower(), "password": "another-pass", "fullName": "Copy Cat"},
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "email_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long-enough", "fullName": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "fullName": "A"}, "password"),
        ({"email": "a@example.com", "password": "x" * 73, "fullName": "A"}, "password"),
        ({"email": "a@example.com", "password": "long-enough", "fullName": "  "}, "fullName"),
        ({"email": "a@example.com", "password": "long-enough"}, "fullName"),
        (
            {"email": "a@example.com", "password": "long-enough", "fullName": "Nul\u0000"},
            "fullName",
        ),
        (
            {"email": "a@example.com", "password": "long-enough", "fullName": "A", "phone": "555"},
            "phone",
        ),
    ],
)
async def test_invalid_registration_is_422_and_creates_nothing(
    gateway: httpx.AsyncClient, body: dict, field: str
):
    if body.get("email") == "a@example.com":  # a fresh address: login throttling is per e-mail
        body = body | {"email": f"{uuid.uuid4().hex}@example.com"}
    response = await gateway.post("/users/register", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in {d["field"] for d in error["details"]}
    if "@" in body.get("email", ""):
        login = await gateway.post(
            "/users/login", json={"email": body["email"], "password": body["password"][:72]}
        )
        assert login.status_code == 401  # no account was made


async def test_wrong_password_and_unknown_email_look_the_same(gateway: httpx.AsyncClient):
    email = new_email()
    await register(gateway, email)
    wrong = await gateway.post("/users/login", json={"email": email, "password": "not-this-one"})
    unknown = await gateway.post(
        "/users/login", json={"email": new_email(), "password": "not-this-one"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert error_of(wrong) == error_of(unknown)


async def test_repeated_failures_lock_out_the_guessing_address_only(gateway: httpx.AsyncClient):
    email = new_email()
    await register(gateway, email)
    statuses = []
    for _ in range(6):
        response = await gateway.post(
            "/users/login", json={"email": email, "password": "nope-nope"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert "Retry-After" in response.headers
    # Even the right password waits out the window, from the address that guessed...
    right = await gateway.post("/users/login", json={"email": email, "password": "correct-horse"})
    assert right.status_code == 429
    # ...but not from another: the gateway tells the service who the client is, and no one
    # can lock an account's owner out by guessing from somewhere else.
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=gateway.base_url, transport=elsewhere) as owner:
        login = await owner.post("/users/login", json={"email": email, "password": "correct-horse"})
    assert login.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
async def test_me_needs_a_valid_token(gateway: httpx.AsyncClient, headers: dict):
    response = await gateway.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] in {"unauthorized", "invalid_token"}


async def test_request_id_is_passed_through_or_made(gateway: httpx.AsyncClient):
    given = await gateway.get("/users/me", headers={"X-Request-ID": "storefront-42"})
    assert given.headers["X-Request-ID"] == "storefront-42"
    assert given.headers.get_list("X-Request-ID") == ["storefront-42"]
    made = await gateway.get("/users/me")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])


async def test_unknown_route_and_oversized_body_answer_in_the_error_shape(
    gateway: httpx.AsyncClient,
):
    missing = await gateway.get("/no-such-thing")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    huge = await gateway.post(
        "/users/register", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )
    assert huge.status_code == 413
    assert error_of(huge)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "service", ["user_service", "product_service", "cart_service", "notification_service"]
)
async def test_every_service_answers_health_ready_and_metrics(stack: str, service: str):
    async with httpx.AsyncClient() as client:
        # Health and readiness on both ports: the probes use the public one, Consul the other.
        for url in (service_url(service), internal_url(service)):
            assert (await client.get(f"{url}/health")).json() == {"status": "healthy"}
            ready = await client.get(f"{url}/ready")
            assert ready.status_code == 200
            assert set(ready.json()["checks"].values()) == {"ok"}
        # The metrics on the internal port only, where Prometheus scrapes.
        metrics = await client.get(f"{internal_url(service)}/metrics")
        assert metrics.status_code == 200
        assert "http_requests_total" in metrics.text
        assert "http_request_duration_seconds_bucket" in metrics.text
        hidden = await client.get(f"{service_url(service)}/metrics")
        assert hidden.status_code == 404 and error_of(hidden)["code"] == "not_found"


async def test_the_token_state_route_answers_on_the_internal_port_only(
    gateway: httpx.AsyncClient, customer: dict[str, str]
):
    user_id = jwt.get_unverified_claims(customer["Authorization"].split()[1])["sub"]
    path = f"/internal/users/{user_id}/token-state"
    async with httpx.AsyncClient() as client:
        inside = await client.get(f"{internal_url('user_service')}{path}")
        assert inside.status_code == 200
        assert inside.json() == {"tokenVersion": 0, "active": True}
        # On the public port it is not there at all: the same answer as a path that is not.
        public = await client.get(f"{service_url('user_service')}{path}")
        unknown = await client.get(f"{service_url('user_service')}/no-such-path")
        assert public.status_code == unknown.status_code == 404
        assert error_of(public) == error_of(unknown)
    # Nor through the gateway.
    assert (await gateway.get(path)).status_code == 404


async def test_on_the_internal_port_x_real_ip_names_no_client(gateway: httpx.AsyncClient):
    email = new_email()
    await register(gateway, email)
    statuses = []
    async with httpx.AsyncClient(base_url=internal_url("user_service")) as inside:
        # Each wrong guess claims another address; they all count for the one that sent them.
        for n in range(6):
            response = await inside.post(
                "/users/login",
                json={"email": email, "password": "nope-nope"},
                headers={"X-Real-IP": f"198.51.100.{n + 1}", "X-Forwarded-For": f"203.0.113.{n}"},
            )
            statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    # They counted for this machine's address, which the gateway names too (its X-Real-IP);
    # from another address the owner gets in.
    right = {"email": email, "password": "correct-horse"}
    assert (await gateway.post("/users/login", json=right)).status_code == 429
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=gateway.base_url, transport=elsewhere) as owner:
        assert (await owner.post("/users/login", json=right)).status_code == 200
