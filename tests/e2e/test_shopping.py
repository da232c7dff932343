"""Browsing the demo catalog, administering it, and filling a cart, through the gateway."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.e2e.test_accounts import login, new_email, register
from tests.support import error_of, eventually


async def all_products(
    gateway: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> tuple[list[dict], int]:
    """Walk every page; return the items in page order and the total the API announced."""
    items: list[dict] = []
    page, total = 1, None
    while True:
        response = await gateway.get(
            "/products", params={**params, "page": page, "pageSize": 50}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        total = body["total"]
        items += body["items"]
        if page * 50 >= total:
            return items, total
        page += 1


async def customer(gateway: httpx.AsyncClient) -> dict[str, str]:
    email = new_email()
    await register(gateway, email)
    return {"Authorization": f"Bearer {await login(gateway, email)}"}


async def test_demo_catalog_pages_are_disjoint_and_complete(gateway):
    items, total = await all_products(gateway, sort="price")
    assert total >= 200  # a few hundred demo products
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == total
    prices = [Decimal(item["price"]) for item in items]
    assert prices == sorted(prices)
    assert len({item["category"] for item in items}) >= 5


async def test_a_word_from_a_description_finds_the_product(gateway):
    books = await gateway.get("/products", params={"category": "books", "pageSize": 100})
    first = next(i for i in books.json()["items"] if len(i["description"].split()) > 5)
    # "A walnut chef's knife made for busy weeknight cooking. ..." -> "weeknight"-like words
    word = max(first["description"].rstrip(".").split()[:10], key=len)
    found, total = await all_products(gateway, search=word)
    assert 0 < total < 288
    assert first["id"] in {item["id"] for item in found}
    assert all(
        word.lower()[:5] in (item["name"] + " " + item["description"]).lower() for item in found
    )


async def test_price_range_filters(gateway):
    everything, _ = await all_products(gateway)
    low, high = Decimal("20.00"), Decimal("40.00")
    expected = {i["id"] for i in everything if low <= Decimal(i["price"]) <= high}
    within, total = await all_products(gateway, minPrice="20.00", maxPrice="40.00")
    assert {i["id"] for i in within} == expected
    assert total == len(expected) > 0
    wrong = await gateway.get("/products", params={"minPrice": "50", "maxPrice": "10"})
    assert wrong.status_code == 422
    assert error_of(wrong)["code"] == "validation_error"


async def test_admin_writes_show_at_once_and_customers_cannot_write(gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    tag = uuid.uuid4().hex[:8]
    body = {
        "sku": f"E2E-{tag}",
        "name": "Gateway Lamp",
        "description": f"A lamp for testing {tag}",
        "category": "home",
        "price": "49.00",
        "currency": "EUR",
        "quantity": 5,
    }
    created = await gateway.post("/products", json=body, headers=admin)
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    assert (await gateway.get("/products", params={"search": tag})).json()["total"] == 1

    patched = await gateway.patch(f"/products/{product_id}", json={"price": "45.50"}, headers=admin)
    assert patched.status_code == 200
    # The back office reads its own writes at once; shoppers once the gateway's copy (a second
    # in the tests, PRODUCT_GATEWAY_FRESH_S) is renewed.
    assert (await gateway.get(f"/products/{product_id}", headers=admin)).json()["price"] == "45.50"
    await eventually(
        lambda: gateway.get(f"/products/{product_id}"),
        until=lambda r: r.json()["price"] == "45.50",
        what="the new price for shoppers",
    )
    listing = (await gateway.get("/products", params={"search": tag}, headers=admin)).json()
    assert listing["items"][0]["price"] == "45.50"

    stock = await gateway.put(
        f"/products/{product_id}/inventory", json={"quantity": 12}, headers=admin
    )
    assert stock.json()["availableQuantity"] == 12
    mine = await gateway.get(f"/products/{product_id}", headers=admin)
    assert mine.json()["availableQuantity"] == 12

    shopper = await customer(gateway)
    for method, path, payload in [
        ("POST", "/products", body | {"sku": f"X-{tag}"}),
        ("PATCH", f"/products/{product_id}", {"price": "1.00"}),
        ("PUT", f"/products/{product_id}/inventory", {"quantity": 0}),
        ("DELETE", f"/products/{product_id}", None),
    ]:
        response = await gateway.request(method, path, json=payload, headers=shopper)
        assert response.status_code == 403, (method, path)
        assert error_of(response)["code"] == "forbidden"

    assert (await gateway.delete(f"/products/{product_id}", headers=admin)).status_code == 204
    await eventually(
        lambda: gateway.get("/products", params={"search": tag}),
        until=lambda r: r.json()["total"] == 0,
        what="the deleted product gone from the shoppers' search",
    )
    assert (await gateway.get(f"/products/{product_id}", headers=admin)).json()["active"] is False


async def test_bulk_import_through_the_gateway(gateway, admin_token):
    tag = uuid.uuid4().hex[:8]
    rows = ["sku,name,description,category,price,currency,quantity"]
    rows += [f"IMP-{tag}-{n},Imported {n},bulk {tag},toys,{n}.50,EUR,{n}" for n in range(1, 2001)]
    rows.append(f"IMP-{tag}-bad,Broken,bulk {tag},toys,free,EUR,1")
    response = await gateway.post(
        "/products/import",
        content="\n".join(rows).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["created"], result["rejected"]) == (2000, 1)
    assert result["errors"][0]["line"] == 2002
    found = (await gateway.get("/products", params={"search": tag})).json()
    assert (found["total"], found["totalCapped"]) == (1000, True)  # counted up to 1,000
    narrow = await gateway.get("/products", params={"search": f"{tag} 1999"})
    assert [p["sku"] for p in narrow.json()["items"]] == [f"IMP-{tag}-1999"]


async def test_fill_change_and_empty_a_cart(gateway):
    shopper = await customer(gateway)
    # Signed in, the shopper sees the catalog as it is now (a token bypasses the gateway's
    # cache, where a product deleted a moment ago may still be listed).
    items, _ = await all_products(gateway, shopper, category="kitchen")
    in_stock = [i for i in items if i["availableQuantity"] >= 3][:2]
    first, second = in_stock

    added = await gateway.post(
        "/cart/items", json={"productId": first["id"], "quantity": 2}, headers=shopper
    )
    assert added.status_code == 201
    await gateway.post(
        "/cart/items", json={"productId": second["id"], "quantity": 1}, headers=shopper
    )
    await gateway.post(
        "/cart/items", json={"productId": first["id"], "quantity": 1}, headers=shopper
    )
    cart = (await gateway.get("/cart", headers=shopper)).json()
    expected = Decimal(first["price"]) * 3 + Decimal(second["price"])
    assert Decimal(cart["total"]) == expected
    assert cart["total"] == f"{expected:.2f}"
    assert cart["itemCount"] == 4

    changed = await gateway.put(f"/cart/items/{first['id']}", json={"quantity": 1}, headers=shopper)
    assert Decimal(changed.json()["total"]) == Decimal(first["price"]) + Decimal(second["price"])
    too_many = await gateway.put(
        f"/cart/items/{first['id']}",
        json={"quantity": first["availableQuantity"] + 1},
        headers=shopper,
    )
    assert too_many.status_code in (409, 422)
    removed = await gateway.delete(f"/cart/items/{second['id']}", headers=shopper)
    assert [i["productId"] for i in removed.json()["items"]] == [first["id"]]
    assert (await gateway.delete("/cart", headers=shopper)).status_code == 204
    assert (await gateway.get("/cart", headers=shopper)).json()["items"] == []
    assert (await gateway.get("/cart")).status_code == 401


async def test_only_administrators_list_products_taken_off_sale(gateway, admin_token, customer):
    admin = {"Authorization": f"Bearer {admin_token}"}
    tag = uuid.uuid4().hex[:10]
    made = await gateway.post(
        "/products",
        json={"sku": f"OFF-{tag}", "name": f"Retired Teapot {tag}", "category": "kitchen",
              "price": "9.00", "currency": "EUR", "quantity": 1},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert (
        await gateway.delete(f"/products/{made.json()['id']}", headers=admin)
    ).status_code == 204
    query = {"search": f"Retired Teapot {tag}", "includeInactive": "true"}

    public = await gateway.get("/products", params={"search": query["search"]})
    assert public.json()["total"] == 0  # shoppers never see it
    for headers, status in [({}, 401), (customer, 403)]:
        refused = await gateway.get("/products", params=query, headers=headers)
        assert refused.status_code == status, refused.text
        assert error_of(refused)
    listed = await gateway.get("/products", params=query, headers=admin)
    assert [(p["id"], p["active"]) for p in listed.json()["items"]] == [(made.json()["id"], False)]
    assert "public" not in listed.headers.get("cache-control", "")  # the back office's, unshared
