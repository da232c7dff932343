"""product_service in-process on the real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from product_service.app import Settings, create_app
from product_service.importer import BATCH_SIZE
from shared_events.store import outbox
from tests.support import (
    AMQP_URL,
    REDIS_URL,
    ROOT,
    database_url,
    error_of,
    eventually,
    migrate,
    running,
)


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    migrate("product_service", "products_test")


@pytest.fixture
async def catalog(user_service: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(
        Settings(
            database_url=database_url("products_test"),
            redis_url=REDIS_URL,
            amqp_url=AMQP_URL,
            user_service_url=user_service,
        )
    )
    async with running(app) as client:
        yield app, client


def new_product(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {
        "sku": f"SKU-{tag}",
        "name": f"Walnut Board {tag}",
        "description": f"A walnut cutting board, oiled by hand, code {tag}",
        "category": "kitchen",
        "price": "39.90",
        "currency": "EUR",
        "quantity": 10,
    } | overrides


async def create(
    client: httpx.AsyncClient, admin: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/products", json=new_product(**overrides), headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def cache_hits(cache: str) -> float:
    labels = {"service": "product_service", "cache": cache, "result": "hit"}
    return REGISTRY.get_sample_value("cache_requests_total", labels) or 0.0


async def read_twice(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    """Read, then read again: the second read must come from the cache."""
    cache = "list" if path == "/products" else "product"
    first = await client.get(path, params=params)
    hits = cache_hits(cache)
    second = await client.get(path, params=params)
    assert cache_hits(cache) == hits + 1, "the second read was not served from the cache"
    assert first.json() == second.json()
    return dict(second.json())


async def test_every_kind_of_write_is_visible_at_once(catalog, admin):
    _, client = catalog
    product = await create(client, admin)
    path = f"/products/{product['id']}"
    search = {"search": product["sku"].split("-")[1]}

    await read_twice(client, path)
    await read_twice(client, "/products", **search)
    put = {k: product[k] for k in ("sku", "description", "category", "currency")}
    put |= {"name": "Renamed Board", "price": "41.00"}
    assert (await client.put(path, json=put, headers=admin)).status_code == 200
    assert (await client.get(path)).json()["name"] == "Renamed Board"
    page = await client.get("/products", params=search)
    assert [i["price"] for i in page.json()["items"]] == ["41.00"]

    await read_twice(client, path)
    await read_twice(client, "/products", **search)
    assert (await client.patch(path, json={"price": "12.50"}, headers=admin)).status_code == 200
    assert (await client.get(path)).json()["price"] == "12.50"
    assert (await client.get("/products", params=search)).json()["items"][0]["price"] == "12.50"

    await read_twice(client, path)
    inventory = await client.put(f"{path}/inventory", json={"quantity": 3}, headers=admin)
    assert inventory.json()["availableQuantity"] == 3
    assert (await client.get(path)).json()["availableQuantity"] == 3

    await read_twice(client, path)
    await read_twice(client, "/products", **search)
    assert (await client.delete(path, headers=admin)).status_code == 204
    assert (await client.get(path)).json()["active"] is False
    assert (await client.get("/products", params=search)).json()["total"] == 0

    await read_twice(client, path)
    csv_body = (
        "sku,name,description,category,price,currency,active\n"
        f"{product['sku']},Imported Board,back again,kitchen,19.00,EUR,true\n"
    )
    imported = await client.post(
        "/products/import", content=csv_body, headers=admin | {"Content-Type": "text/csv"}
    )
    assert imported.json()["updated"] == 1
    fresh = (await client.get(path)).json()
    assert (fresh["name"], fresh["price"], fresh["active"]) == ("Imported Board", "19.00", True)


async def test_redis_stopped_reads_still_answer(catalog, admin):
    _, client = catalog
    product = await create(client, admin)
    path = f"/products/{product['id']}"
    await read_twice(client, path)
    await asyncio.to_thread(
        subprocess.run, ["redis-cli", "shutdown", "nosave"], check=False, capture_output=True
    )
    try:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json()["sku"] == product["sku"]
        listing = await client.get("/products", params={"search": product["sku"].split("-")[1]})
        assert listing.json()["total"] == 1
        patched = await client.patch(
            path, json={"name": "Written while Redis is down"}, headers=admin
        )
        assert patched.status_code == 200
        assert (await client.get(path)).json()["name"] == "Written while Redis is down"
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert error_of(ready)["details"]["checks"]["redis"].startswith("down")
    finally:
        await asyncio.to_thread(
            subprocess.run, ["bash", str(ROOT / "scripts" / "bootstrap.sh")], check=True
        )
    await eventually(lambda: client.get("/ready"), until=lambda r: r.status_code == 200)
    assert (await client.get(path)).json()["name"] == "Written while Redis is down"


async def test_inventory_updated_is_emitted_once_per_change(catalog, admin):
    app, client = catalog
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind("ecommerce.events", routing_key="inventory.updated")
        product = await create(client, admin, quantity=0)
        path = f"/products/{product['id']}/inventory"
        for quantity in (7, 7, 9, 9):
            response = await client.put(path, json={"quantity": quantity}, headers=admin)
            assert response.status_code == 200

        async with app.state.sessionmaker() as session:
            rows = (
                await session.execute(
                    sa.select(outbox.c.payload).where(
                        outbox.c.event_type == "InventoryUpdated",
                        outbox.c.correlation_id == product["id"],
                    )
                )
            ).scalars()
            assert [r["newQuantity"] for r in rows] == [7, 9]

        received: list[dict[str, Any]] = []

        async def collect() -> int:
            while (message := await probe.get(no_ack=True, fail=False)) is not None:
                body = json.loads(message.body)
                if body["productId"] == product["id"]:
                    received.append(body)
            return len(received)

        await eventually(collect, until=lambda n: n >= 2)
        assert [body["newQuantity"] for body in received] == [7, 9]


async def test_import_reports_each_bad_row_and_imports_the_rest(catalog, admin):
    _, client = catalog
    existing = await create(client, admin)
    tag = uuid.uuid4().hex[:8]
    csv_body = "\n".join(
        [
            "sku,name,description,category,price,currency,quantity,imageUrl",
            f"A-{tag},Good One,fine,kitchen,10.00,EUR,5,",
            f"B-{tag},Free Lunch,no price,kitchen,0,EUR,1,",
            f"C-{tag},Funny Money,bad currency,kitchen,5.00,XYZ,1,",
            f'D-{tag},"Quoted, with comma","two\nlines",home,7.50,USD,2,',
            f"A-{tag},Second A,repeat,kitchen,11.00,EUR,1,",
            f"E-{tag},,no name,kitchen,5.00,EUR,1,",
            f"{existing['sku']},Updated Existing,new text,kitchen,1.99,EUR,500,",
            f"F-{tag},Bad Category,x,Not A Slug,5.00,EUR,1,",
        ]
    )
    response = await client.post(
        "/products/import", content=csv_body, headers=admin | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["received"], result["created"], result["updated"]) == (8, 2, 1)
    assert result["rejected"] == 5
    by_line = {e["line"]: e for e in result["errors"]}
    assert sorted(by_line) == [3, 4, 7, 8, 10]
    assert "price" in by_line[3]["reason"]
    assert "currency" in by_line[4]["reason"]
    assert "first seen at line 2" in by_line[7]["reason"]
    assert "name" in by_line[8]["reason"]
    assert "category" in by_line[10]["reason"]

    quoted = await client.get("/products", params={"search": f"D-{tag}"})
    assert quoted.json()["total"] == 0  # the SKU is not in the searchable text
    listing = await client.get("/products", params={"search": "Quoted comma", "pageSize": 100})
    [item] = [i for i in listing.json()["items"] if i["sku"] == f"D-{tag}"]
    assert item["description"] == "two\nlines"
    assert (item["price"], item["currency"], item["availableQuantity"]) == ("7.50", "USD", 2)

    updated = (await client.get(f"/products/{existing['id']}")).json()
    assert (updated["name"], updated["price"]) == ("Updated Existing", "1.99")
    assert updated["availableQuantity"] == existing["availableQuantity"]  # stock untouched


async def test_import_takes_json_lines_and_refuses_other_formats(catalog, admin, customer):
    _, client = catalog
    tag = uuid.uuid4().hex[:8]
    lines = [
        json.dumps(new_product(sku=f"J1-{tag}")),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps(new_product(sku=f"J2-{tag}", price="-1")),
    ]
    response = await client.post(
        "/products/import",
        content="\n".join(lines),
        headers=admin | {"Content-Type": "application/x-ndjson"},
    )
    result = response.json()
    assert (result["created"], result["rejected"]) == (1, 3)
    assert [e["line"] for e in result["errors"]] == [2, 3, 4]

    other = await client.post(
        "/products/import", content="<xml/>", headers=admin | {"Content-Type": "application/xml"}
    )
    assert other.status_code == 415
    assert error_of(other)["code"] == "unsupported_media_type"
    customer = await client.post(
        "/products/import", content="sku\n", headers=customer | {"Content-Type": "text/csv"}
    )
    assert customer.status_code == 403


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-3.00"}, "price"),
        ({"price": "1.999"}, "price"),
        ({"currency": "XXY"}, "currency"),
        ({"currency": "euro"}, "currency"),
        ({"sku": "has space"}, "sku"),
        ({"name": "   "}, "name"),
        ({"category": "Upper Case"}, "category"),
        ({"quantity": -1}, "quantity"),
        ({"imageUrl": "not a url"}, "imageUrl"),
    ],
)
async def test_invalid_products_are_422_and_change_nothing(catalog, overrides, field, admin):
    _, client = catalog
    body = new_product(**overrides)
    response = await client.post("/products", json=body, headers=admin)
    assert response.status_code == 422
    assert field in {d["field"] for d in error_of(response)["details"]}
    assert (await client.get("/products", params={"search": body["sku"]})).json()["total"] == 0


async def test_writes_need_an_admin_and_a_free_sku(catalog, admin, customer):
    _, client = catalog
    product = await create(client, admin)
    as_customer = await client.post("/products", json=new_product(), headers=customer)
    assert as_customer.status_code == 403
    anonymous = await client.post("/products", json=new_product())
    assert anonymous.status_code == 401
    duplicate = await client.post("/products", json=new_product(sku=product["sku"]), headers=admin)
    assert duplicate.status_code == 409
    assert error_of(duplicate)["code"] == "sku_taken"
    other = await create(client, admin)
    clash = await client.patch(
        f"/products/{other['id']}", json={"sku": product["sku"]}, headers=admin
    )
    assert clash.status_code == 409
    null = await client.patch(f"/products/{other['id']}", json={"price": None}, headers=admin)
    assert null.status_code == 422
    missing = await client.patch(f"/products/{uuid.uuid4()}", json={"name": "x"}, headers=admin)
    assert missing.status_code == 404


async def test_search_uses_the_gin_index(catalog):
    app, _ = catalog
    async with app.state.sessionmaker() as session:
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = (
            await session.execute(
                sa.text(
                    "EXPLAIN SELECT id FROM products "
                    "WHERE search_vector @@ websearch_to_tsquery('english', 'walnut board')"
                )
            )
        ).scalars()
        assert "ix_products_search" in "\n".join(plan)


async def test_counts_and_pages_stop_at_the_thousandth_match(catalog, admin):
    _, client = catalog
    tag = uuid.uuid4().hex[:8]
    rows = ["sku,name,description,category,price,currency,quantity"]
    rows += [f"CAP-{tag}-{n},Cap {tag} item {n},plain,toys,1.00,EUR,1" for n in range(1_001)]
    rows.append(f"CAP-{tag}-best,Cap {tag} {tag} best,{tag} {tag},toys,1.00,EUR,1")
    imported = await client.post(
        "/products/import", content="\n".join(rows), headers=admin | {"Content-Type": "text/csv"}
    )
    assert imported.json()["created"] == 1_002, imported.text
    found = (await client.get("/products", params={"search": tag})).json()
    assert (found["total"], found["totalCapped"]) == (1_000, True)
    narrow = (await client.get("/products", params={"search": f"{tag} best"})).json()
    assert (narrow["total"], narrow["totalCapped"]) == (1, False)
    assert narrow["items"][0]["sku"] == f"CAP-{tag}-best"
    last = await client.get("/products", params={"search": tag, "page": 10, "pageSize": 100})
    assert len(last.json()["items"]) == 100
    past = await client.get("/products", params={"search": tag, "page": 11, "pageSize": 100})
    assert past.status_code == 422 and error_of(past)["code"] == "validation_error"


async def test_bad_bytes_and_broken_quotes_in_the_middle_lose_no_valid_row(catalog, admin):
    _, client = catalog
    tag = uuid.uuid4().hex[:8]
    rows = [f"G{i}-{tag},Good {i},kitchen,3.00,EUR,1\n".encode() for i in range(6)]
    body = (
        b"sku,name,category,price,currency,quantity\n"
        + b"".join(rows[:2])
        + f"X1-{tag},Caf\xe9,kitchen,3.00,EUR,1\n".encode("latin-1")  # not UTF-8
        + b"".join(rows[2:4])
        + f'X2-{tag},"Unterminated,kitchen,3.00,EUR,1\n'.encode()
        + b"".join(rows[4:])
    )
    response = await client.post(
        "/products/import", content=body, headers=admin | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["received"], result["created"], result["rejected"]) == (8, 6, 2)
    assert [(e["line"], e["reason"].split(":")[0]) for e in result["errors"]] == [
        (4, "not UTF-8"),
        (7, "unterminated quoted field (a quote within a field is written twice)"),
    ]
    listed = await client.get("/products", params={"search": "Good", "pageSize": 100})
    skus = {i["sku"] for i in listed.json()["items"]}
    assert {f"G{i}-{tag}" for i in range(6)} <= skus


@pytest.mark.parametrize(
    ("content", "content_type", "why"),
    [
        (b"", "text/csv", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "text/csv", "not a text file"),
        (b"name,price\nMug,2.00\n", "text/csv", "lacks sku"),
        (b"sku;name;category;price;currency\n", "text/csv", "lacks"),
        (b"<products/>", "application/x-ndjson", "not a JSON lines file"),
    ],
)
async def test_a_file_that_cannot_be_read_is_422_and_imports_nothing(
    catalog, admin, content, content_type, why
):
    _, client = catalog
    before = (await client.get("/products", params={"pageSize": 1})).json()["total"]
    response = await client.post(
        "/products/import", content=content, headers=admin | {"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "unreadable_file"
    assert why in error_of(response)["message"]
    assert (await client.get("/products", params={"pageSize": 1})).json()["total"] == before


async def test_a_streamed_import_reports_its_progress_batch_by_batch(catalog, admin):
    _, client = catalog
    tag = uuid.uuid4().hex[:8]
    count = 2 * BATCH_SIZE + 10
    rows = [f"S{i}-{tag},Streamed {i},kitchen,1.00,EUR,1" for i in range(count)]
    rows[BATCH_SIZE + 5] = f"S-bad-{tag},,kitchen,1.00,EUR,1"  # no name
    body = "\n".join(["sku,name,category,price,currency,quantity", *rows])
    async with client.stream(
        "POST",
        "/products/import",
        content=body,
        headers=admin | {"Content-Type": "text/csv", "Accept": "application/x-ndjson"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    *progress, final = lines
    assert [p["done"] for p in progress] == [False] * 3 and final["done"] is True
    assert [p["received"] for p in progress] == [BATCH_SIZE, 2 * BATCH_SIZE + 1, count]
    assert [len(p["errors"]) for p in progress] == [0, 1, 0]
    assert progress[1]["errors"][0]["line"] == BATCH_SIZE + 7
    assert (final["received"], final["created"], final["rejected"]) == (count, count - 1, 1)
    for p in lines:
        assert p["received"] == p["created"] + p["updated"] + p["rejected"]
