"""Deleting an account erases the person everywhere: after it settles, no database of the system
holds their e-mail, phone, name or address; orders and payments stay, anonymised."""

from __future__ import annotations

import random
import uuid

import asyncpg
import redis.asyncio as redis

from cart_service.service import cart_key
from tests.e2e.conftest import DATABASES, DB_SUFFIX, STACK_ENV
from tests.e2e.test_orders import new_product, payment, settled
from tests.support import PG, eventually


async def traces(needles: list[str]) -> list[str]:
    """Where any of ``needles`` still stands: every row of every table of every service
    database, as text (the outbox and inbox included)."""
    found = []
    for name in DATABASES:
        conn = await asyncpg.connect(PG.replace("+asyncpg", "") + f"/{name}{DB_SUFFIX}")
        try:
            tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            for (table,) in tables:
                rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
                for row in rows:
                    text = row["row"].lower()
                    found += [f"{name}.{table}: {n}" for n in needles if n.lower() in text]
        finally:
            await conn.close()
    client = redis.Redis.from_url(STACK_ENV["REDIS_URL"])
    try:
        async for key in client.scan_iter(count=1000):
            value = await client.dump(key) or b""
            blob = (key + value).decode(errors="replace").lower()
            found += [f"redis {key!r}: {n}" for n in needles if n.lower() in blob]
    finally:
        await client.aclose()
    return found


async def test_a_deleted_account_leaves_nothing_personal_in_any_database(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    tag = uuid.uuid4().hex[:10]
    email = f"Forget.{tag}@Example.com"
    phone = f"+4917{random.randint(10**7, 10**8 - 1)}"
    address = {
        "fullName": f"Ada Forgetme{tag}",
        "line1": f"{tag} Erasure Lane",
        "city": f"Oblivion{tag}",
        "postalCode": f"E{tag[:6]}",
        "country": "DE",
    }
    registered = await gateway.post(
        "/users/register",
        json={
            "email": email,
            "password": "correct-horse",
            "fullName": f"Ada {tag}",
            "phone": phone,
        },
    )
    assert registered.status_code == 201
    user_id = registered.json()["id"]
    login = await gateway.post("/users/login", json={"email": email, "password": "correct-horse"})
    user = {"Authorization": f"Bearer {login.json()['accessToken']}"}

    # A shipped order (e-mails and an SMS to the phone), and a cart left full.
    kettle = await new_product(gateway, admin, stock=5)
    await gateway.post("/cart/items", json={"productId": kettle["id"], "quantity": 2}, headers=user)
    placed = await gateway.post(
        "/orders",
        json={"shippingAddress": address, "paymentMethodId": "pm_card_visa"},
        headers=user | {"Idempotency-Key": str(uuid.uuid4())},
    )
    order_id = placed.json()["id"]
    assert (await settled(gateway, user, order_id))["status"] == "CONFIRMED"
    shipped = await gateway.post(
        f"/orders/{order_id}/ship", json={"trackingNumber": f"TRK-{tag}"}, headers=admin
    )
    assert shipped.status_code == 200
    sms = await eventually(
        lambda: gateway.get("/notifications", headers=user),
        until=lambda r: any(d["channel"] == "sms" for d in r.json()["items"]),
        what="the shipping SMS",
    )
    assert sms.status_code == 200
    await gateway.post("/cart/items", json={"productId": kettle["id"], "quantity": 1}, headers=user)

    personal = [
        email.lower(),
        phone,
        f"Ada {tag}",
        address["fullName"],
        address["line1"],
        address["city"],
        address["postalCode"],
    ]
    before = await traces(personal)
    for where in ("users", "orders", "payments", "notifications"):
        assert any(f.startswith(f"{where}.") for f in before), f"{where}: nothing to erase?"
    carts = redis.Redis.from_url(STACK_ENV["REDIS_URL"])
    assert await carts.exists(cart_key(uuid.UUID(user_id)))

    deleted = await gateway.request(
        "DELETE", "/users/me", json={"password": "correct-horse"}, headers=user
    )
    assert deleted.status_code == 204
    left = await eventually(
        lambda: traces(personal),
        until=lambda found: not found,
        timeout=20,
        interval=0.5,
        what="every trace of the deleted customer gone",
    )
    assert left == []
    assert not await carts.exists(cart_key(uuid.UUID(user_id)))
    await carts.aclose()

    # Kept for the accounts, anonymised: the order (its total, lines, country) and its payment.
    kept = await gateway.get(f"/orders/{order_id}", headers=admin)
    assert kept.status_code == 200
    assert kept.json()["status"] == "SHIPPED" and kept.json()["totalAmount"] == "25.00"
    assert kept.json()["shippingAddress"] == {"erased": True, "country": "DE"}
    [captured] = await payment(gateway, admin, order_id)
    assert (captured["status"], captured["amount"]) == ("captured", "25.00")
    conn = await asyncpg.connect(PG.replace("+asyncpg", "") + f"/notifications{DB_SUFFIX}")
    try:
        deliveries = await conn.fetch(
            "SELECT channel, recipient FROM deliveries WHERE user_id = $1", uuid.UUID(user_id)
        )
        contact = await conn.fetchval(
            "SELECT count(*) FROM contacts WHERE user_id = $1", uuid.UUID(user_id)
        )
    finally:
        await conn.close()
    assert {d["channel"] for d in deliveries} == {"email", "sms"}
    assert {d["recipient"] for d in deliveries} == {"erased@erased.invalid", "(erased)"}
    assert contact == 0
