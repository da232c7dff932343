"""Deleting an account erases the person everywhere: after it settles, no database of the system
holds their e-mail, phone, name or address; orders and payments stay, anonymised."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import aio_pika
import asyncpg
import redis.asyncio as redis

from cart_service.service import cart_key
from shared_events.events import UserRegistered
from shared_events.parking import list_parked
from shared_events.store import ERASED_EMAIL
from shared_events.topology import parked_queue_name
from tests.e2e.conftest import DATABASES, DB_SUFFIX, STACK_ENV
from tests.e2e.test_back_office import park
from tests.e2e.test_orders import ADDRESS, new_product, payment, settled, shopper
from tests.support import AMQP_URL, PG, eventually


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


async def _order_while_deleting(gateway, product_id: str) -> tuple[str, int]:
    """A new customer orders and deletes their account at the same moment: the user's id and
    the order's answer."""
    user = await shopper(gateway, phone=None)
    me = (await gateway.get("/users/me", headers=user)).json()
    added = await gateway.post(
        "/cart/items", json={"productId": product_id, "quantity": 1}, headers=user
    )
    assert added.status_code == 201

    async def place() -> int:
        await asyncio.sleep(random.uniform(0, 0.15))  # anywhere in the erasure's way
        response = await gateway.post(
            "/orders",
            json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
            headers=user | {"Idempotency-Key": str(uuid.uuid4())},
        )
        return response.status_code

    deleted, placed = await asyncio.gather(
        gateway.request("DELETE", "/users/me", json={"password": "correct-horse"}, headers=user),
        place(),
    )
    assert deleted.status_code == 204
    return me["id"], placed


async def test_an_order_racing_its_customers_deletion_is_anonymised_or_refused(
    gateway, admin_token
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=100)
    rounds = []
    for _ in range(5):  # 50 races, 10 at a time
        rounds += await asyncio.gather(
            *(_order_while_deleting(gateway, kettle["id"]) for _ in range(10))
        )
    assert {status for _, status in rounds} <= {202, 401, 410}
    users = [uuid.UUID(user_id) for user_id, _ in rounds]
    conn = await asyncpg.connect(PG.replace("+asyncpg", "") + f"/orders{DB_SUFFIX}")
    try:

        async def erased_everywhere() -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM erased_users WHERE user_id = ANY($1)", users
                )
            )

        await eventually(erased_everywhere, until=lambda n: n == len(users), timeout=30)
        kept = await conn.fetch(
            "SELECT user_email, shipping_address::text AS address FROM orders"
            " WHERE user_id = ANY($1)",
            users,
        )
    finally:
        await conn.close()
    # Every order that committed, whenever it did, holds nobody.
    assert len(kept) == sum(1 for _, status in rounds if status == 202)
    for row in kept:
        assert row["user_email"] == ERASED_EMAIL
        assert json.loads(row["address"]) == {"erased": True, "country": ADDRESS["country"]}


async def test_an_erased_persons_parked_messages_are_anonymised(gateway):
    user = await shopper(gateway, phone=None)
    me = (await gateway.get("/users/me", headers=user)).json()
    stuck = UserRegistered(user_id=uuid.UUID(me["id"]), email=me["email"], full_name="Ada Parked")
    await park("notification_service", stuck, "SendGrid answered 503")
    await park("product_service", stuck, "no handler for event type 'UserRegistered'")
    deleted = await gateway.request(
        "DELETE", "/users/me", json={"password": "correct-horse"}, headers=user
    )
    assert deleted.status_code == 204

    async def parked_bodies() -> list[dict]:
        found = []
        for service in ("notification_service", "product_service"):
            for message in await list_parked(AMQP_URL, service, limit=1000):
                if message.message_id == str(stuck.id):
                    found.append(json.loads(message.body))
        return found

    # Looked at once a second: a look holds the parked messages for its moment, and a sweep
    # passing then misses them until its second pass (the retries' delays later).
    bodies = await eventually(
        parked_bodies,
        until=lambda found: len(found) == 2 and all(b["email"] == ERASED_EMAIL for b in found),
        timeout=45,
        interval=1.0,
        what="the parked copies anonymised",
    )
    assert {b["fullName"] for b in bodies} == {"(erased)"}
    # Leave nothing parked for the other tests.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for service in ("notification_service", "product_service"):
            queue = await channel.get_queue(parked_queue_name(service), ensure=False)
            others = []
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                if message.message_id == str(stuck.id):
                    await message.ack()
                else:
                    others.append(message)
            for message in others:
                await message.nack()
