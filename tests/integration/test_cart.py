"""cart_service in-process, calling a real product_service over HTTP; real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from jose import jwt

from cart_service.app import Settings as CartSettings
from cart_service.app import create_app as create_cart_app
from cart_service.service import cart_key
from product_service.app import Settings as ProductSettings
from product_service.app import create_app as create_product_app
from shared_core.fields import MAX_CART_LINES, MAX_LINE_QUANTITY
from shared_events.bus import EventBus
from shared_events.events import OrderCreated, OrderLine
from tests.integration.conftest import USERS_DATABASE
from tests.support import (
    AMQP_URL,
    REDIS_URL,
    Served,
    database_url,
    error_of,
    eventually,
    free_port,
    migrate,
    new_accounts,
    running,
)


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    migrate("product_service", "products_test")


@pytest.fixture
async def product_server(user_service: str) -> AsyncIterator[Served]:
    """product_service on a real port, so the cart calls it over HTTP and it can be stopped."""
    port = free_port()
    settings = ProductSettings(
        database_url=database_url("products_test"),
        redis_url=REDIS_URL,
        amqp_url=AMQP_URL,
        user_service_url=user_service,
        internal_port=port,
    )
    server = Served(lambda: create_product_app(settings), port)
    await server.start()
    yield server
    if server.running:
        await server.stop()


@pytest.fixture
async def cart(
    product_server: Served, user_service: str
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = CartSettings(
        user_service_url=user_service,
        redis_url=REDIS_URL,
        amqp_url=AMQP_URL,
        product_service_url=product_server.url,
        breaker_threshold=3,
        breaker_reset_s=1.0,
        peer_timeout_s=1.0,
    )
    app = create_cart_app(settings)
    async with running(app) as client:
        yield app, client


async def add_product(server: Served, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "sku": f"CART-{tag}",
        "name": f"Teapot {tag}",
        "category": "kitchen",
        "price": "19.99",
        "currency": "EUR",
        "quantity": 10,
    } | fields
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_cart_lines_and_totals_are_exact(cart, product_server, admin, customer):
    _, client = cart
    user = customer
    teapot = await add_product(product_server, admin, price="19.99")
    cup = await add_product(product_server, admin, price="0.10", quantity=50)

    added = await client.post(
        "/cart/items", json={"productId": teapot["id"], "quantity": 2}, headers=user
    )
    assert added.status_code == 201
    await client.post("/cart/items", json={"productId": teapot["id"], "quantity": 1}, headers=user)
    await client.post("/cart/items", json={"productId": cup["id"], "quantity": 3}, headers=user)
    body = (await client.get("/cart", headers=user)).json()
    lines = {line["productId"]: line for line in body["items"]}
    assert lines[teapot["id"]]["quantity"] == 3
    assert lines[teapot["id"]]["lineTotal"] == "59.97"
    assert lines[cup["id"]]["lineTotal"] == "0.30"
    assert body["total"] == "60.27"
    assert Decimal(body["total"]) == Decimal("19.99") * 3 + Decimal("0.10") * 3
    assert (body["currency"], body["itemCount"], body["stale"]) == ("EUR", 6, False)

    changed = await client.put(f"/cart/items/{cup['id']}", json={"quantity": 1}, headers=user)
    assert changed.json()["total"] == "60.07"
    removed = await client.delete(f"/cart/items/{teapot['id']}", headers=user)
    assert removed.json()["total"] == "0.10"
    assert (await client.delete("/cart", headers=user)).status_code == 204
    empty = (await client.get("/cart", headers=user)).json()
    assert (empty["items"], empty["total"], empty["currency"]) == ([], "0.00", None)
    [other] = await new_accounts(USERS_DATABASE)
    other_user = (await client.get("/cart", headers=other)).json()
    assert other_user["items"] == []


async def test_bad_cart_requests_are_refused_and_change_nothing(
    cart, product_server, admin, customer
):
    _, client = cart
    user = customer
    teapot = await add_product(product_server, admin, quantity=4)
    await client.post("/cart/items", json={"productId": teapot["id"], "quantity": 1}, headers=user)
    before = (await client.get("/cart", headers=user)).json()

    async def refused(method: str, path: str, body: Any, status: int, code: str) -> None:
        response = await client.request(method, path, json=body, headers=user)
        assert response.status_code == status, response.text
        assert error_of(response)["code"] == code
        assert (await client.get("/cart", headers=user)).json() == before

    item = f"/cart/items/{teapot['id']}"
    await refused(
        "POST", "/cart/items", {"productId": teapot["id"], "quantity": 0}, 422, "validation_error"
    )
    await refused("PUT", item, {"quantity": 100}, 422, "validation_error")
    await refused(
        "POST", "/cart/items", {"productId": "nope", "quantity": 1}, 422, "validation_error"
    )
    await refused(
        "POST",
        "/cart/items",
        {"productId": str(uuid.uuid4()), "quantity": 1},
        404,
        "product_not_found",
    )
    await refused(
        "POST", "/cart/items", {"productId": teapot["id"], "quantity": 4}, 409, "out_of_stock"
    )
    await refused("PUT", item, {"quantity": 5}, 409, "out_of_stock")
    await refused("DELETE", f"/cart/items/{uuid.uuid4()}", None, 404, "not_in_cart")
    dollars = await add_product(product_server, admin, currency="USD")
    await refused(
        "POST", "/cart/items", {"productId": dollars["id"], "quantity": 1}, 409, "currency_mismatch"
    )
    retired = await add_product(product_server, admin)
    async with httpx.AsyncClient(base_url=product_server.url) as products:
        await products.delete(f"/products/{retired['id']}", headers=admin)
    await refused(
        "POST", "/cart/items", {"productId": retired["id"], "quantity": 1}, 409, "product_inactive"
    )
    assert (await client.get("/cart")).status_code == 401


async def test_product_service_down_answers_stale_and_the_breaker_opens_then_closes(
    cart, product_server, admin, customer
):
    app, client = cart
    user = customer
    teapot = await add_product(product_server, admin)
    await client.post("/cart/items", json={"productId": teapot["id"], "quantity": 2}, headers=user)
    never_seen = uuid.uuid4()

    await product_server.stop()
    stale = await client.get("/cart", headers=user)
    assert stale.status_code == 200
    body = stale.json()
    assert body["stale"] is True
    assert [(i["name"], i["quantity"], i["stale"]) for i in body["items"]] == [
        (teapot["name"], 2, True)
    ]
    assert body["total"] == "39.98"

    for _ in range(3):  # the breaker's threshold
        await client.get("/cart", headers=user)
    assert await app.state.peers.breaker_state("product_service") == "opened"
    unavailable = await client.post(
        "/cart/items", json={"productId": str(never_seen), "quantity": 1}, headers=user
    )
    assert unavailable.status_code == 503
    assert error_of(unavailable)["code"] == "product_service_unavailable"

    await product_server.start()
    fresh = await eventually(
        lambda: client.get("/cart", headers=user),
        until=lambda r: r.json()["stale"] is False,
        timeout=10,
        interval=0.2,
        what="fresh cart data after the breaker's reset time",
    )
    assert fresh.json()["items"][0]["stale"] is False
    assert await app.state.peers.breaker_state("product_service") == "closed"


async def test_order_created_takes_the_ordered_lines_out_once(
    cart, product_server, admin, customer
):
    app, client = cart
    user = customer
    teapot = await add_product(product_server, admin)
    mug = await add_product(product_server, admin)
    await client.post("/cart/items", json={"productId": teapot["id"], "quantity": 5}, headers=user)
    await client.post("/cart/items", json={"productId": mug["id"], "quantity": 1}, headers=user)

    owner = uuid.UUID(jwt.get_unverified_claims(user["Authorization"].split()[1])["sub"])
    event = OrderCreated(
        order_id=uuid.uuid4(),
        user_id=owner,
        total_amount=Decimal("59.97"),
        currency="EUR",
        user_email="t@example.com",
        items=[
            OrderLine(
                product_id=uuid.UUID(teapot["id"]),
                name="T",
                quantity=3,
                unit_price=Decimal("19.99"),
            ),
            OrderLine(
                product_id=uuid.UUID(mug["id"]), name="M", quantity=1, unit_price=Decimal("19.99")
            ),
        ],
        payment_method_id="pm_card_visa",
    )
    bus = EventBus(AMQP_URL, "ecommerce.events", "test-publisher")
    await bus.connect()
    try:
        for _ in range(2):  # the same event twice
            await bus.publish(
                body=event.to_json(),
                event_type="OrderCreated",
                message_id=str(event.id),
                routing_key=event.routing_key,
                correlation_id=str(event.order_id),
                headers={},
            )
    finally:
        await bus.close()

    def quantities(response: httpx.Response) -> dict[str, int]:
        return {i["productId"]: i["quantity"] for i in response.json()["items"]}

    await eventually(
        lambda: client.get("/cart", headers=user),
        until=lambda r: quantities(r) == {teapot["id"]: 2},
        what="ordered lines leaving the cart",
    )
    consumed = app.state.consumer
    await eventually(
        lambda: asyncio.sleep(0, result=_handled(consumed.service)), until=lambda n: n >= 2
    )
    assert quantities(await client.get("/cart", headers=user)) == {teapot["id"]: 2}


def _handled(service: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"service": service, "event_type": "OrderCreated", "outcome": "processed"}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def many_products(server: Served, admin: dict[str, str], count: int) -> list[str]:
    """``count`` new products (one import), their ids."""
    tag = uuid.uuid4().hex[:8]
    rows = "".join(f"M-{tag}-{i},Mug {i},m-{tag},2.50,EUR,500\n" for i in range(count))
    async with httpx.AsyncClient(base_url=server.url) as client:
        imported = await client.post(
            "/products/import",
            content="sku,name,category,price,currency,quantity\n" + rows,
            headers=admin | {"Content-Type": "text/csv"},
        )
        assert imported.json()["created"] == count, imported.text
        ids = []
        for page in range(1, count // 100 + 2):
            listed = await client.get(
                "/products", params={"category": f"m-{tag}", "pageSize": 100, "page": page}
            )
            ids += [p["id"] for p in listed.json()["items"]]
    assert len(ids) == count
    return ids


def _peer_calls() -> float:
    from prometheus_client import REGISTRY

    labels = {"service": "cart_service", "peer": "product_service", "outcome": "ok"}
    return REGISTRY.get_sample_value("peer_calls_total", labels) or 0.0


async def test_a_cart_holds_at_most_its_limit_of_lines_even_when_added_at_once(
    cart, product_server, admin, customer
):
    _, client = cart
    products = await many_products(product_server, admin, MAX_CART_LINES + 1)

    async def add(product_ids: list[str]) -> list[httpx.Response]:
        return await asyncio.gather(
            *(
                client.post("/cart/items", json={"productId": p, "quantity": 1}, headers=customer)
                for p in product_ids
            )
        )

    for start in range(0, MAX_CART_LINES - 5, 19):
        filled = await add(products[start : min(start + 19, MAX_CART_LINES - 5)])
        assert {r.status_code for r in filled} == {201}
    # Six adds at once for the last five places: exactly one is refused.
    added = await add(products[MAX_CART_LINES - 5 :])
    statuses = sorted(r.status_code for r in added)
    assert statuses == [201] * 5 + [422], statuses
    [full] = [r for r in added if r.status_code == 422]
    assert error_of(full)["code"] == "cart_full"
    assert error_of(full)["details"] == {"maxLines": MAX_CART_LINES}
    body = (await client.get("/cart", headers=customer)).json()
    assert len(body["items"]) == MAX_CART_LINES and body["itemCount"] == MAX_CART_LINES

    # Reading it, whatever its size, is one call to product_service.
    before = _peer_calls()
    assert (await client.get("/cart", headers=customer)).status_code == 200
    assert _peer_calls() - before == 1


async def test_a_line_holds_at_most_its_limit_and_the_cart_is_unchanged(
    cart, product_server, admin, customer
):
    _, client = cart
    kettle = await add_product(product_server, admin, quantity=500)
    line = {"productId": kettle["id"], "quantity": MAX_LINE_QUANTITY}
    assert (await client.post("/cart/items", json=line, headers=customer)).status_code == 201
    more = await client.post(
        "/cart/items", json={"productId": kettle["id"], "quantity": 1}, headers=customer
    )
    assert more.status_code == 422, more.text
    assert error_of(more)["code"] == "quantity_limit"
    assert error_of(more)["details"] == {"max": MAX_LINE_QUANTITY, "inCart": MAX_LINE_QUANTITY}
    [only] = (await client.get("/cart", headers=customer)).json()["items"]
    assert only["quantity"] == MAX_LINE_QUANTITY


async def test_concurrent_adds_of_one_product_all_count(cart, product_server, admin, customer):
    _, client = cart
    kettle = await add_product(product_server, admin, quantity=50)
    add = {"productId": kettle["id"], "quantity": 1}
    added = await asyncio.gather(
        *(client.post("/cart/items", json=add, headers=customer) for _ in range(10))
    )
    assert [r.status_code for r in added] == [201] * 10
    [line] = (await client.get("/cart", headers=customer)).json()["items"]
    assert line["quantity"] == 10
    # Past the stock, concurrently: exactly the units in stock are taken, never more.
    scarce = await add_product(product_server, admin, quantity=3)
    one = {"productId": scarce["id"], "quantity": 1}
    raced = await asyncio.gather(
        *(client.post("/cart/items", json=one, headers=customer) for _ in range(6))
    )
    assert sorted(r.status_code for r in raced) == [201] * 3 + [409] * 3
    items = (await client.get("/cart", headers=customer)).json()["items"]
    lines = {i["productId"]: i["quantity"] for i in items}
    assert lines == {kettle["id"]: 10, scarce["id"]: 3}


async def test_a_cart_bigger_than_the_limit_still_reads_in_bounded_calls(
    cart, product_server, admin, customer
):
    # A cart written before the limit existed: 120 lines, 20 of them products that are gone.
    app, client = cart
    products = await many_products(product_server, admin, 100)
    owner = uuid.UUID(jwt.get_unverified_claims(customer["Authorization"].split()[1])["sub"])
    gone = [str(uuid.uuid4()) for _ in range(20)]
    await app.state.redis.hset(cart_key(owner), mapping={pid: 2 for pid in products + gone})

    others = await new_accounts(USERS_DATABASE, count=5)
    before = _peer_calls()
    reads = await asyncio.gather(
        client.get("/cart", headers=customer), *(client.get("/cart", headers=o) for o in others)
    )
    assert [r.status_code for r in reads] == [200] * 6
    assert _peer_calls() - before == 2  # two batches of at most 100 ids; empty carts: none
    body = reads[0].json()
    assert len(body["items"]) == 100 and body["total"] == "500.00"
    assert await app.state.redis.hlen(cart_key(owner)) == 100  # the gone lines left


async def test_products_of_two_currencies_added_at_once_never_share_a_cart(
    cart, product_server, admin, customer
):
    """The cart's currency is checked against the lines the change saw; a line that came in
    meanwhile makes the change look again, so one of the two is refused."""
    _, client = cart
    for _ in range(5):
        euros = await add_product(product_server, admin, currency="EUR")
        dollars = await add_product(product_server, admin, currency="USD")
        assert (await client.delete("/cart", headers=customer)).status_code == 204
        added = await asyncio.gather(
            *(
                client.post("/cart/items", json={"productId": p["id"]}, headers=customer)
                for p in (euros, dollars)
            )
        )
        assert sorted(a.status_code for a in added) == [201, 409], [a.text for a in added]
        refused = next(a for a in added if a.status_code == 409)
        assert error_of(refused)["code"] == "currency_mismatch"
        body = (await client.get("/cart", headers=customer)).json()
        assert len(body["items"]) == 1


async def test_an_erased_accounts_cart_is_not_made_again(cart, product_server, admin, customer):
    """UserDeleted empties the cart; a request whose token was still taken somewhere cannot
    fill a new one for the erased person."""
    app, client = cart
    teapot = await add_product(product_server, admin)
    me = (await client.get("/cart", headers=customer)).json()
    assert me["items"] == []
    user_id = uuid.UUID(jwt.get_unverified_claims(customer["Authorization"][7:])["sub"])
    await app.state.carts.erase(user_id)
    refused = await client.post("/cart/items", json={"productId": teapot["id"]}, headers=customer)
    assert refused.status_code == 401 and error_of(refused)["code"] == "token_revoked"
    assert not await app.state.redis.exists(cart_key(user_id))
