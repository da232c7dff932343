"""The gateway's own behaviour: request ids through every service, CORS, rate limits."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.e2e.test_orders import ADDRESS, new_product, settled
from tests.support import ROOT, error_of, eventually

LOGS = ROOT / ".run" / "test" / "logs"


def services_logging(request_id: str) -> set[str]:
    return {log.stem for log in LOGS.glob("*.log") if request_id in log.read_text(errors="replace")}


async def test_one_request_id_follows_an_order_through_every_service(
    gateway, admin_token, customer
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = customer
    kettle = await new_product(gateway, admin, stock=3)
    added = await gateway.post(
        "/cart/items", json={"productId": kettle["id"], "quantity": 1}, headers=user
    )
    assert added.status_code == 201
    request_id = f"trace-{uuid.uuid4().hex}"
    placed = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=user | {"Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": request_id},
    )
    assert placed.status_code == 202
    assert placed.headers["X-Request-ID"] == request_id
    await settled(gateway, user, placed.json()["id"])
    touched = {
        "order_service",  # the request itself
        "cart_service",  # asked for the cart over HTTP, then OrderCreated
        "product_service",  # asked for prices over HTTP, then OrderCreated
        "payment_service",  # OrderCreated
        "notification_service",  # OrderCreated, OrderConfirmed
        "user_service",  # asked by order_service whether the token is still good
    }
    await eventually(
        lambda: asyncio.to_thread(services_logging, request_id),
        until=lambda services: touched <= services,
        what=f"{request_id} in every service's log",
    )


async def test_only_a_plain_request_id_is_kept_and_the_returned_one_is_logged(gateway):
    kept = f"order-{uuid.uuid4().hex}.retry_2"
    answer = await gateway.get("/products", params={"pageSize": 1}, headers={"X-Request-ID": kept})
    assert answer.headers["X-Request-ID"] == kept
    for hostile in ["two words", "x" * 129, 'quote"d', "line\\nbreak", "ünï", "<script>"]:
        answer = await gateway.get(
            "/products", params={"pageSize": 1}, headers={"X-Request-ID": hostile.encode()}
        )
        made = answer.headers["X-Request-ID"]
        assert made != hostile and len(made) == 32 and int(made, 16) >= 0, made
        # The id the client got is the one the service logged the request under.
        await eventually(
            lambda made=made: asyncio.to_thread(services_logging, made),
            until=lambda services: "product_service" in services,
            what=f"{made} in product_service's log",
        )


async def test_cors_answers_configured_origins_only(gateway):
    allowed = await gateway.options(
        "/orders",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in allowed.headers["Access-Control-Allow-Headers"]
    other = await gateway.get("/products", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["X-Frame-Options"] == "DENY"


async def test_large_answers_are_compressed(gateway):
    response = await gateway.get(
        "/products", params={"pageSize": 50}, headers={"Accept-Encoding": "gzip"}
    )
    assert response.headers.get("Content-Encoding") == "gzip"
    assert len(response.json()["items"]) == 50  # httpx decompressed it


async def test_too_many_logins_from_one_address_are_429(gateway):
    async def attempt() -> httpx.Response:
        return await gateway.post(
            "/users/login", json={"email": f"{uuid.uuid4().hex}@example.com", "password": "x" * 8}
        )

    answers = await asyncio.gather(*(attempt() for _ in range(100)))
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) >= 40  # 20 per second here (10 in make dev), with a burst of 20
    assert {r.status_code for r in answers} <= {401, 429}
    assert error_of(limited[0])["code"] == "too_many_requests"
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].headers["X-Request-ID"]
    # The limit is for login and registration: the rest of the API still answers.
    assert (await gateway.get("/products", params={"pageSize": 1})).status_code == 200
    # And it lifts within a few seconds.
    await eventually(attempt, until=lambda r: r.status_code == 401, timeout=10, interval=0.5)
