"""A smoke test any environment can run against its gateway: is the shop up and does an order
go through the whole saga?

    python3 scripts/smoke.py --gateway https://staging.shop.example.com [--timeout 60]

It needs only Python's standard library (run it from a CI job, a laptop or a pod). In order:
the gateway's /health; the catalog (a page of products and one product); a new customer
registers and logs in; one product in stock goes into the cart; an order with the card
``pm_card_visa`` (Stripe's test card: staging must use test keys or the sandbox) is placed and
reaches CONFIRMED within ``--timeout``; the cart is empty afterwards. Each step prints its time;
the first failure prints what was expected and what came back, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

ADDRESS = {
    "fullName": "Smoke Test",
    "line1": "1 Check Street",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


class SmokeFailed(Exception):
    pass


class Gateway:
    def __init__(self, base: str, insecure: bool) -> None:
        self.base = base.rstrip("/")
        self.context = ssl._create_unverified_context() if insecure else None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
    ) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})}
            | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=15, context=self.context) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:
            raise SmokeFailed(f"{method} {path}: no answer ({error})") from error
        if status not in expect:
            raise SmokeFailed(f"{method} {path}: expected {expect}, got {status}: {text[:300]}")
        return json.loads(text) if text else None


def run(gateway: Gateway, timeout: float) -> None:
    def step(what: str, started: float) -> None:
        print(f"ok   {what} ({(time.monotonic() - started) * 1000:.0f} ms)", flush=True)

    started = time.monotonic()
    health = gateway.call("GET", "/health")
    if health != {"status": "healthy"}:
        raise SmokeFailed(f"/health: expected healthy, got {health}")
    step("gateway healthy", started)

    started = time.monotonic()
    page = gateway.call("GET", "/api/v1/products?pageSize=100")
    in_stock = [p for p in page["items"] if p["active"] and p["availableQuantity"] > 0]
    if not in_stock:
        raise SmokeFailed("the catalog's first page has no product in stock to order")
    product = gateway.call("GET", f"/api/v1/products/{in_stock[0]['id']}")
    step(f"catalog answers ({page['total']} products, ordering {product['sku']})", started)

    started = time.monotonic()
    email = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    gateway.call(
        "POST",
        "/api/v1/users/register",
        {"email": email, "password": password, "fullName": "Smoke Test"},
        expect=(201,),
    )
    login = gateway.call("POST", "/api/v1/users/login", {"email": email, "password": password})
    token = login["accessToken"]
    step("a new customer registered and logged in", started)

    started = time.monotonic()
    gateway.call(
        "POST", "/api/v1/cart/items", {"productId": product["id"], "quantity": 1}, token, (201,)
    )
    placed = gateway.call(
        "POST",
        "/api/v1/orders",
        {"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        token,
        (202,),
        {"Idempotency-Key": str(uuid.uuid4())},
    )
    step(f"order {placed['id']} placed ({placed['status']})", started)

    started = time.monotonic()
    deadline = started + timeout
    order = placed
    while order["status"] == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
        order = gateway.call("GET", f"/api/v1/orders/{placed['id']}", token=token)
    if order["status"] != "CONFIRMED":
        reason = order.get("cancelReason") or "still PENDING"
        raise SmokeFailed(
            f"order {placed['id']}: expected CONFIRMED within {timeout:g} s, "
            f"got {order['status']} ({reason})"
        )
    step("the saga confirmed the order", started)

    started = time.monotonic()
    while time.monotonic() < deadline:
        cart = gateway.call("GET", "/api/v1/cart", token=token)
        if not cart["items"]:
            break
        time.sleep(0.5)
    else:
        raise SmokeFailed("the ordered line is still in the cart")
    step("the cart was emptied by the order", started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", required=True, help="e.g. https://staging.shop.example.com")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the saga")
    parser.add_argument(
        "--insecure", action="store_true", help="accept any TLS certificate (self-signed)"
    )
    args = parser.parse_args()
    try:
        run(Gateway(args.gateway, args.insecure), args.timeout)
    except SmokeFailed as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
