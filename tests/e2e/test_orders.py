"""The order saga end to end, through the gateway: happy path, declines, stock, cancels, faults."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from scripts.stack import running_pid
from tests.e2e.conftest import USERS_DATABASE, stack_command
from tests.e2e.test_accounts import login, new_email
from tests.support import ROOT, error_of, eventually, new_accounts

ADDRESS = {
    "fullName": "Sam Shopper",
    "line1": "1 Market Street",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}
FINAL = {"CONFIRMED", "SHIPPED", "CANCELLED"}


async def shopper(gateway: httpx.AsyncClient, phone: str | None = "+4915112345678") -> dict:
    email = new_email()
    body = {"email": email, "password": "correct-horse", "fullName": "Sam Shopper"}
    if phone:
        body["phone"] = phone
    assert (await gateway.post("/users/register", json=body)).status_code == 201
    return {"Authorization": f"Bearer {await login(gateway, email)}"}


async def new_product(
    gateway: httpx.AsyncClient, admin: dict, stock: int, price: str = "12.50"
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "sku": f"ORD-{tag}",
        "name": f"Saga Kettle {tag}",
        "category": "kitchen",
        "price": price,
        "currency": "EUR",
        "quantity": stock,
    }
    response = await gateway.post("/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def product_state(gateway: httpx.AsyncClient, admin: dict, product_id: str) -> dict[str, Any]:
    """The product as the back office sees it now (with a token: never the gateway's cache)."""
    return dict((await gateway.get(f"/products/{product_id}", headers=admin)).json())


async def order(
    gateway: httpx.AsyncClient,
    user: dict,
    lines: list[tuple[str, int]],
    payment_method: str = "pm_card_visa",
    key: str | None = None,
) -> dict[str, Any]:
    for product_id, quantity in lines:
        added = await gateway.post(
            "/cart/items", json={"productId": product_id, "quantity": quantity}, headers=user
        )
        assert added.status_code == 201, added.text
    response = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": payment_method},
        headers=user | {"Idempotency-Key": key or str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert body["status"] == "PENDING"
    return body


async def settled(
    gateway: httpx.AsyncClient,
    user: dict,
    order_id: str,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline
) -> dict[str, Any]:
    response = await eventually(
        lambda: gateway.get(f"/orders/{order_id}", headers=user),
        until=lambda r: r.json().get("status") in FINAL,
        timeout=timeout,
        what=f"order {order_id} leaving PENDING",
    )
    return dict(response.json())


async def templates(gateway: httpx.AsyncClient, user: dict, *wanted: str) -> set[tuple[str, str]]:
    response = await eventually(
        lambda: gateway.get("/notifications", headers=user, params={"pageSize": 100}),
        until=lambda r: (
            set(wanted) <= {f"{i['channel']}:{i['template']}" for i in r.json()["items"]}
        ),
        what=f"notifications {wanted}",
    )
    return {(i["channel"], i["template"]) for i in response.json()["items"]}


async def payment(gateway: httpx.AsyncClient, user: dict, order_id: str) -> list[dict]:
    response = await gateway.get("/payments", params={"orderId": order_id}, headers=user)
    assert response.status_code == 200
    return list(response.json()["items"])


async def test_a_purchase_confirms_ships_and_captures(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    kettle = await new_product(gateway, admin, stock=5, price="12.50")
    key = str(uuid.uuid4())
    placed = await order(gateway, user, [(kettle["id"], 2)], key=key)
    assert placed["totalAmount"] == "25.00"
    assert placed["items"][0]["name"] == kettle["name"]  # priced by the catalog

    confirmed = await settled(gateway, user, placed["id"], timeout=2.0)
    assert confirmed["status"] == "CONFIRMED"
    steps = [(t["event"], t["direction"]) for t in confirmed["timeline"]]
    assert steps[0] == ("OrderCreated", "emitted")
    assert {("StockReserved", "received"), ("PaymentProcessed", "received")} <= set(steps)
    assert steps[-1] == ("OrderConfirmed", "emitted")
    assert (await product_state(gateway, admin, kettle["id"]))["availableQuantity"] == 3
    await eventually(
        lambda: gateway.get("/cart", headers=user), until=lambda r: r.json()["items"] == []
    )
    [authorised] = await payment(gateway, user, placed["id"])
    assert (authorised["status"], authorised["amount"]) == ("authorised", "25.00")

    again = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=user | {"Idempotency-Key": key},
    )
    assert again.status_code == 202 and again.json()["id"] == placed["id"]
    assert (await gateway.get("/orders", headers=user)).json()["total"] == 1

    shipped = await gateway.post(
        f"/orders/{placed['id']}/ship", json={"trackingNumber": "DHL-123456"}, headers=admin
    )
    assert shipped.status_code == 200, shipped.text
    assert (shipped.json()["status"], shipped.json()["trackingNumber"]) == ("SHIPPED", "DHL-123456")
    captured = await eventually(
        lambda: payment(gateway, user, placed["id"]),
        until=lambda p: p and p[0]["status"] == "captured",
    )
    assert captured[0]["amount"] == "25.00"
    sent = await templates(
        gateway,
        user,
        "email:order_received",
        "email:order_confirmed",
        "email:order_shipped",
        "sms:order_shipped",
    )
    assert ("email", "verify_email") in sent
    assert (await product_state(gateway, admin, kettle["id"]))["availableQuantity"] == 3


async def test_a_declined_card_cancels_and_restores_stock(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway, phone=None)
    kettle = await new_product(gateway, admin, stock=4)
    placed = await order(gateway, user, [(kettle["id"], 3)], "pm_card_chargeDeclined")
    cancelled = await settled(gateway, user, placed["id"])
    assert cancelled["status"] == "CANCELLED"
    assert "declined" in cancelled["cancelReason"]
    await eventually(
        lambda: product_state(gateway, admin, kettle["id"]),
        until=lambda p: p["availableQuantity"] == 4,
        what="stock restored",
    )
    [failed] = await payment(gateway, user, placed["id"])
    assert (failed["status"], failed["declineCode"]) == ("failed", "generic_decline")
    await templates(gateway, user, "email:payment_failed", "email:order_cancelled")


async def test_ordering_more_than_the_stock_cancels_and_voids(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    kettle = await new_product(gateway, admin, stock=5)
    await gateway.post("/cart/items", json={"productId": kettle["id"], "quantity": 3}, headers=user)
    await gateway.put(f"/products/{kettle['id']}/inventory", json={"quantity": 1}, headers=admin)
    placed = await order(gateway, user, [])
    cancelled = await settled(gateway, user, placed["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancelReason"].startswith("Out of stock")
    assert "3 ordered, 1 left" in cancelled["cancelReason"]
    payments = await eventually(
        lambda: payment(gateway, user, placed["id"]),
        until=lambda p: all(x["status"] == "voided" for x in p),
        what="the authorisation voided",
    )
    assert all(p["status"] != "captured" for p in payments)
    assert (await product_state(gateway, admin, kettle["id"]))["availableQuantity"] == 1


async def test_cancelling_a_confirmed_order_compensates(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    kettle = await new_product(gateway, admin, stock=6)
    placed = await order(gateway, user, [(kettle["id"], 2)])
    assert (await settled(gateway, user, placed["id"]))["status"] == "CONFIRMED"
    [other] = await new_accounts(USERS_DATABASE)
    stranger = await gateway.post(f"/orders/{placed['id']}/cancel", headers=other)
    assert stranger.status_code == 404

    cancelled = await gateway.post(f"/orders/{placed['id']}/cancel", headers=user)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    await eventually(
        lambda: product_state(gateway, admin, kettle["id"]),
        until=lambda p: p["availableQuantity"] == 6,
        what="stock back",
    )
    await eventually(
        lambda: payment(gateway, user, placed["id"]),
        until=lambda p: [x["status"] for x in p] == ["voided"],
        what="payment voided",
    )
    again = await gateway.post(f"/orders/{placed['id']}/cancel", headers=user)
    assert again.status_code == 409
    assert error_of(again)["code"] == "order_not_cancellable"
    ship = await gateway.post(
        f"/orders/{placed['id']}/ship", json={"trackingNumber": "X-1"}, headers=admin
    )
    assert ship.status_code == 409


async def test_fifty_concurrent_orders_for_ten_in_stock(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=10, price="5.00")
    users = await new_accounts(USERS_DATABASE, 50)
    for user in users:
        added = await gateway.post(
            "/cart/items", json={"productId": kettle["id"], "quantity": 1}, headers=user
        )
        assert added.status_code == 201

    async def place(user: dict) -> tuple[dict, str]:
        response = await gateway.post(
            "/orders",
            json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
            headers=user | {"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 202, response.text
        return user, response.json()["id"]

    placed = await asyncio.gather(*(place(user) for user in users))
    finals = await asyncio.gather(
        *(settled(gateway, user, order_id, timeout=30) for user, order_id in placed)
    )
    statuses = [o["status"] for o in finals]
    assert statuses.count("CONFIRMED") == 10
    assert statuses.count("CANCELLED") == 40
    assert all(o["cancelReason"].startswith("Out of stock") for o in finals if o["cancelReason"])
    assert (await product_state(gateway, admin, kettle["id"]))["availableQuantity"] == 0


async def test_orders_wait_for_a_stopped_payment_service(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=20)
    pid_file = ROOT / ".run" / "test" / "payment_service.pid"
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    await eventually(
        lambda: asyncio.to_thread(running_pid, pid_file), until=lambda pid: pid is None, timeout=20
    )
    try:
        users = await new_accounts(USERS_DATABASE, 5)
        placed = [(user, (await order(gateway, user, [(kettle["id"], 1)]))["id"]) for user in users]
        for user, order_id in placed:
            state = (await gateway.get(f"/orders/{order_id}", headers=user)).json()
            assert state["status"] == "PENDING"  # no payment outcome without payment_service
    finally:
        await asyncio.to_thread(stack_command, "start")
    finals = [await settled(gateway, user, order_id, timeout=20) for user, order_id in placed]
    assert [o["status"] for o in finals] == ["CONFIRMED"] * 5
    for user, order_id in placed:
        assert [p["status"] for p in await payment(gateway, user, order_id)] == ["authorised"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (
            {"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
            {},
            400,
            "idempotency_key_required",
        ),
        (
            {"shippingAddress": ADDRESS, "paymentMethodId": "4242424242424242"},
            None,
            422,
            "validation_error",
        ),
        (
            {"shippingAddress": ADDRESS | {"country": "XX"}, "paymentMethodId": "pm_card_visa"},
            None,
            422,
            "validation_error",
        ),
        ({"paymentMethodId": "pm_card_visa"}, None, 422, "validation_error"),
        ({"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"}, None, 409, "cart_empty"),
    ],
)
async def test_bad_orders_are_refused_and_create_nothing(
    gateway, customer, body, headers, status, code
):
    user = customer
    sent = user | ({"Idempotency-Key": str(uuid.uuid4())} if headers is None else headers)
    response = await gateway.post("/orders", json=body, headers=sent)
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code
    assert (await gateway.get("/orders", headers=user)).json()["total"] == 0


async def test_orders_are_private_and_shipping_is_for_admins(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    kettle = await new_product(gateway, admin, stock=3)
    placed = await order(gateway, user, [(kettle["id"], 1)])
    await settled(gateway, user, placed["id"])
    [other] = await new_accounts(USERS_DATABASE)
    assert (await gateway.get(f"/orders/{placed['id']}", headers=other)).status_code == 404
    assert (await gateway.get(f"/orders/{placed['id']}", headers=admin)).status_code == 200
    assert await payment(gateway, other, placed["id"]) == []
    ship = await gateway.post(
        f"/orders/{placed['id']}/ship", json={"trackingNumber": "T-1"}, headers=user
    )
    assert ship.status_code == 403
    everyone = (await gateway.get("/orders", headers=admin, params={"pageSize": 100})).json()
    assert everyone["total"] >= 1
    assert Decimal(placed["totalAmount"]) == Decimal(kettle["price"])


async def test_an_order_takes_the_price_of_the_moment_and_refuses_what_is_no_longer_sold(
    gateway, admin_token
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    kettle = await new_product(gateway, admin, stock=5, price="12.50")
    added = await gateway.post(
        "/cart/items", json={"productId": kettle["id"], "quantity": 2}, headers=user
    )
    assert added.status_code == 201
    assert added.json()["total"] == "25.00"
    repriced = await gateway.patch(
        f"/products/{kettle['id']}", json={"price": "14.00"}, headers=admin
    )
    assert repriced.status_code == 200, repriced.text
    placed = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=user | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert placed.status_code == 202, placed.text
    assert placed.json()["items"][0]["unitPrice"] == "14.00"
    assert Decimal(placed.json()["totalAmount"]) == Decimal("28.00")
    assert (await settled(gateway, user, placed.json()["id"]))["status"] == "CONFIRMED"

    other = await shopper(gateway)
    lamp = await new_product(gateway, admin, stock=5)
    added = await gateway.post(
        "/cart/items", json={"productId": lamp["id"], "quantity": 1}, headers=other
    )
    assert added.status_code == 201
    assert (await gateway.delete(f"/products/{lamp['id']}", headers=admin)).status_code == 204
    refused = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=other | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert refused.status_code == 409, refused.text
    assert error_of(refused)["code"] == "product_inactive"
    assert error_of(refused)["details"] == {"productId": lamp["id"]}
    assert (await gateway.get("/orders", headers=other)).json()["total"] == 0


async def test_the_shop_finds_orders_and_cancels_one_with_a_reason(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway)
    email = (await gateway.get("/users/me", headers=user)).json()["email"]
    kettle = await new_product(gateway, admin, stock=3)
    placed = await order(gateway, user, [(kettle["id"], 1)])
    assert (await settled(gateway, user, placed["id"]))["status"] == "CONFIRMED"

    for search in [email.upper(), placed["id"][:8], f" {placed['id']} "]:
        found = await gateway.post("/orders/search", json={"search": search}, headers=admin)
        assert [o["id"] for o in found.json()["items"]] == [placed["id"]], search
    for search in ["100%", "_", "\\"]:  # LIKE's wildcards are plain characters here
        nothing = await gateway.post("/orders/search", json={"search": search}, headers=admin)
        assert nothing.status_code == 200 and nothing.json()["total"] == 0, search
    own = await gateway.post("/orders/search", json={"search": "example.com"}, headers=user)
    assert [o["id"] for o in own.json()["items"]] == [placed["id"]]  # a customer: theirs only
    # In a URL the e-mail would be written to logs: refused, and said where to put it.
    in_url = await gateway.get("/orders", params={"search": email}, headers=admin)
    assert in_url.status_code == 422 and error_of(in_url)["code"] == "search_in_body"
    for bad in [{"search": "x" * 201}, {"page": 0}, {"pageSize": 101}, {"status": "LOST"}]:
        refused = await gateway.post("/orders/search", json=bad, headers=admin)
        assert refused.status_code == 422 and error_of(refused)["code"] == "validation_error"

    refused = await gateway.post(f"/orders/{placed['id']}/cancel", headers=admin)
    assert refused.status_code == 422 and error_of(refused)["code"] == "reason_required"
    blank = await gateway.post(
        f"/orders/{placed['id']}/cancel", json={"reason": " \u200b "}, headers=admin
    )
    assert blank.status_code == 422
    assert (await settled(gateway, user, placed["id"]))["status"] == "CONFIRMED"  # unchanged

    cancelled = await gateway.post(
        f"/orders/{placed['id']}/cancel", json={"reason": "The kettle broke in the warehouse."},
        headers=admin,
    )  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "CANCELLED"
    assert body["cancelReason"] == "Cancelled by the shop: The kettle broke in the warehouse."
    step = next(t for t in body["timeline"] if t["event"] == "CancelRequested")
    assert step["details"] == {"by": "shop", "reason": "The kettle broke in the warehouse."}
    await templates(gateway, user, "email:order_cancelled")
    await eventually(
        lambda: product_state(gateway, admin, kettle["id"]),
        until=lambda p: p["availableQuantity"] == 3,
        what="stock back",
    )
