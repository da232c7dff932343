"""The gateway's own behaviour: request ids through every service, CORS, rate limits."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest

from tests.e2e.conftest import GATEWAY_PORT
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
            "/products",
            # A query of its own: not one the gateway answers from its cache.
            params={"pageSize": 1, "search": uuid.uuid4().hex[:8]},
            headers={"X-Request-ID": hostile.encode()},
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


async def raw_exchange(request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client would send these) and read the gateway's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", GATEWAY_PORT)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"HELLO\r\n\r\n", 400, "bad_request"),
        (
            b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"BREW /api/v1/products HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"TRACE /api/v1/products HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (
            b"GET /api/v1/products?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (
            b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
        (
            b"POST /api/v1/users/register HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
            413,
            "payload_too_large",
        ),
    ],
    ids=[
        "request-line",
        "header-line",
        "unknown-method",
        "trace",
        "long-uri",
        "big-header",
        "route",
        "body",
    ],
)
async def test_errors_the_gateway_makes_itself_are_json_with_the_request_id(
    stack, request_bytes, status, code
):
    answered, headers, body = await raw_exchange(request_bytes)
    assert answered == status, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert (error["code"], set(error)) == (code, {"code", "message", "details"})
    assert error["details"]["requestId"] == headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


@pytest.mark.parametrize(
    "request_bytes",
    [
        # (a route the gateway answers only from the service, never from its catalog cache)
        b"GET /api/v1/orders HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: x\r\nX-Note: a\x7fb\r\n\r\n",
        "GET /api/v1/products/caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    ],
    ids=["control-in-header", "delete-in-header", "raw-utf8-path"],
)
async def test_requests_a_service_cannot_parse_are_answered_in_the_error_shape(
    stack, request_bytes
):
    # nginx passes these on; the service's HTTP parser refuses them, in JSON, not plain text.
    answered, headers, body = await raw_exchange(request_bytes)
    assert answered == 400, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


async def test_an_unsupported_http_version_is_json(stack):
    answered, headers, body = await raw_exchange(b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n")
    assert answered == 505 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "http_version_not_supported"
