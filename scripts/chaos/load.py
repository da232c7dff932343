"""The load: customers filling a cart and placing orders as careful clients, following
them, and the admin shipping and owners cancelling some; the products they order."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from scripts.chaos.infra import API, DB_SUFFIX, stack_env
from scripts.stack import admin_token

FINAL = {"CONFIRMED", "SHIPPED", "CANCELLED"}
ADDRESS = {
    "fullName": "Chaos Customer",
    "line1": "1 Fault Line",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}
PLACE_RETRY_S = 60.0  # how long a customer keeps retrying POST /orders with the same key


# --- the API as clients use it ---------------------------------------------------------------


async def call(
    api: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    """One request; None when the connection failed or timed out."""
    try:
        return await api.request(method, path, **kwargs)
    except httpx.HTTPError:
        return None


def admin_headers() -> dict[str, str]:
    """An administrator made with the real CLI against users_chaos, logged in via the gateway."""
    env = stack_env()
    env["USER_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/users{DB_SUFFIX}"
    token = admin_token(API, "chaos-admin@example.com", "chaos-admin-password", env)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Product:
    id: str
    name: str
    price: Decimal
    stock: int


@dataclass
class Chaos:
    api: httpx.AsyncClient
    admin: dict[str, str]
    customers: list[dict[str, str]]
    plenty: list[Product] = field(default_factory=list)
    initial: dict[str, int] = field(default_factory=dict)  # product id -> initial stock
    known: set[str] = field(default_factory=set)  # violations reported by earlier scenarios
    retry_poison: tuple[str, float] | None = None  # (event id, published at)
    synthetic: set[str] = field(default_factory=set)  # ids of the orders we made events for
    seed: int = 0


async def new_product(chaos: Chaos, name: str, stock: int, price: str) -> Product:
    body = {
        "sku": f"CHAOS-{uuid.uuid4().hex[:10]}",
        "name": name,
        "category": "chaos",
        "price": price,
        "currency": "EUR",
        "quantity": stock,
    }
    response = await chaos.api.post("/products", json=body, headers=chaos.admin)
    response.raise_for_status()
    product = Product(response.json()["id"], name, Decimal(price), stock)
    chaos.initial[product.id] = stock
    return product


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Load:
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    abandoned: list[str] = field(default_factory=list)  # keys never answered 202
    refused: Counter[str] = field(default_factory=Counter)  # 4xx answers to POST /orders
    retries: int = 0  # POST /orders sent again with the same key after a 5xx or no answer
    resent: int = 0  # POST /orders sent again with the same key after a 202
    mismatches: list[str] = field(default_factory=list)  # same key, another order
    # (when, "ship" or "cancel", order id, the owner's headers): done a little later, as a
    # warehouse ships or a customer changes their mind, so faults fall between the two.
    later: list[tuple[float, str, str, dict[str, str]]] = field(default_factory=list)
    shipped: int = 0
    cancelled: int = 0


async def empty_cart(api: httpx.AsyncClient, auth: dict[str, str], stop: asyncio.Event) -> None:
    """Wait until the last order's lines have left the cart (cart_service does that on
    OrderCreated), so the next order holds only its own lines; clear it if that takes long."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if stop.is_set():
            return
        response = await call(api, "GET", "/cart", headers=auth)
        if response is not None and response.status_code == 200 and not response.json()["items"]:
            return
        await asyncio.sleep(0.1)
    await call(api, "DELETE", "/cart", headers=auth)


async def place(
    api: httpx.AsyncClient, load: Load, auth: dict[str, str], method: str, rng: random.Random
) -> str | None:
    """POST /orders as a careful client: the same key again on a 5xx or no answer."""
    key = str(uuid.uuid4())
    headers = auth | {"Idempotency-Key": key}
    body = {"shippingAddress": ADDRESS, "paymentMethodId": method}
    deadline = time.monotonic() + PLACE_RETRY_S
    delay = 0.2
    while True:
        response = await call(api, "POST", "/orders", json=body, headers=headers)
        if response is not None and response.status_code == 202:
            order_id = str(response.json()["id"])
            load.accepted[key] = order_id
            break
        if response is not None and response.status_code < 500:
            load.refused[f"{response.status_code} {_code(response)}"] += 1
            return None
        if time.monotonic() > deadline:
            load.abandoned.append(key)
            return None
        load.retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    if rng.random() < 0.1:  # a double submit: the same key must answer the same order
        again = await call(api, "POST", "/orders", json=body, headers=headers)
        load.resent += 1
        if again is not None and again.status_code == 202 and again.json()["id"] != order_id:
            load.mismatches.append(f"key {key}: order {order_id}, then {again.json()['id']}")
    return order_id


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def follow(
    chaos: Chaos, load: Load, auth: dict[str, str], order_id: str, rng: random.Random
) -> None:
    """Watch the order for a while; a CONFIRMED one is sometimes shipped or cancelled, a
    few seconds later."""
    deadline = time.monotonic() + 10
    status = "PENDING"
    while time.monotonic() < deadline and not load.stop.is_set():
        response = await call(chaos.api, "GET", f"/orders/{order_id}", headers=auth)
        if response is not None and response.status_code == 200:
            status = response.json()["status"]
            if status in FINAL:
                break
        await asyncio.sleep(0.15)
    if status != "CONFIRMED":
        return
    dice, when = rng.random(), time.monotonic() + rng.uniform(1.0, 5.0)
    if dice < 0.25:
        load.later.append((when, "ship", order_id, auth))
    elif dice < 0.40:
        load.later.append((when, "cancel", order_id, auth))


async def ship_and_cancel(chaos: Chaos, load: Load) -> None:
    """The admin ships, and owners cancel, the orders picked by follow() once their time
    comes; what is not due when the load stops is left CONFIRMED."""
    while not load.stop.is_set():
        now = time.monotonic()
        due = [item for item in load.later if item[0] <= now]
        load.later = [item for item in load.later if item[0] > now]
        for _, action, order_id, auth in due:
            if action == "ship":
                tracking = {"trackingNumber": f"CHAOS-{order_id[:8]}"}
                answer = await call(
                    chaos.api,
                    "POST",
                    f"/orders/{order_id}/ship",
                    json=tracking,
                    headers=chaos.admin,
                )
                load.shipped += answer is not None and answer.status_code == 200
            else:
                answer = await call(chaos.api, "POST", f"/orders/{order_id}/cancel", headers=auth)
                load.cancelled += answer is not None and answer.status_code == 200
        await asyncio.sleep(0.1)


async def customer(
    chaos: Chaos, load: Load, auth: dict[str, str], scarce: Product, rng: random.Random
) -> None:
    while not load.stop.is_set():
        await empty_cart(chaos.api, auth, load.stop)
        if load.stop.is_set():
            return
        lines = [(rng.choice(chaos.plenty).id, rng.randint(1, 3))]
        if rng.random() < 0.3:
            lines.append((rng.choice(chaos.plenty).id, rng.randint(1, 3)))
        if rng.random() < 0.35:  # customers race for the few in stock: some orders fail
            lines.append((scarce.id, rng.randint(2, 6)))
        added = 0
        for product_id, quantity in lines:
            response = await call(
                chaos.api,
                "POST",
                "/cart/items",
                json={"productId": product_id, "quantity": quantity},
                headers=auth,
            )
            added += response is not None and response.status_code == 201
        if not added:  # e.g. the cart service is down, or the scarce product is gone
            await asyncio.sleep(0.2)
            continue
        method = "pm_card_chargeDeclined" if rng.random() < 0.15 else "pm_card_visa"
        order_id = await place(chaos.api, load, auth, method, rng)
        if order_id is not None:
            await follow(chaos, load, auth, order_id, rng)


async def run_load(
    chaos: Chaos, load: Load, scarce: Product, max_orders: int, max_s: float
) -> None:
    """K customers ordering until stopped, or after max_orders accepted, or after max_s."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(max_s, load.stop.set)

    async def count_guard() -> None:
        while not load.stop.is_set():
            if len(load.accepted) >= max_orders:
                load.stop.set()
            await asyncio.sleep(0.2)

    chaos.seed += 1
    try:
        await asyncio.gather(
            count_guard(),
            ship_and_cancel(chaos, load),
            *(
                customer(chaos, load, auth, scarce, random.Random(chaos.seed * 1000 + n))
                for n, auth in enumerate(chaos.customers)
            ),
        )
    finally:
        timer.cancel()
