"""A killed service: the gateway answers 503 in the error shape, and no event is lost. A
restarted Redis: no request fails for it."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx

from tests.e2e.conftest import stack_command
from tests.e2e.test_accounts import login, new_email, register
from tests.e2e.test_orders import new_product
from tests.support import ROOT, error_of, eventually, restart_redis


async def test_killed_notification_service_loses_no_email(
    gateway: httpx.AsyncClient,
):
    pid_file = ROOT / ".run" / "test" / "notification_service.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)

    email = new_email()
    await register(gateway, email)  # its e-mail waits in the durable queue
    auth = {"Authorization": f"Bearer {await login(gateway, email)}"}

    down = await eventually(
        lambda: gateway.get("/notifications", headers=auth),
        until=lambda r: r.status_code == 503,
        what="the gateway noticing the dead service",
    )
    assert error_of(down)["code"] == "service_unavailable"
    assert down.headers["Retry-After"] == "5"
    health = await gateway.get(gateway.base_url.join("/health"))  # the gateway itself is fine
    assert health.json() == {"status": "healthy"}

    await asyncio.to_thread(stack_command, "start")
    response = await eventually(
        lambda: gateway.get("/notifications", headers=auth),
        until=lambda r: r.status_code == 200 and r.json()["total"] == 1,
        timeout=15,
        what="the verification e-mail after the restart",
    )
    assert response.json()["items"][0]["template"] == "verify_email"


async def test_a_redis_restart_costs_no_request(gateway: httpx.AsyncClient, admin_token, customer):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=20)
    item = f"/cart/items/{kettle['id']}"
    email = new_email()
    await register(gateway, email)
    # Catalog reads with a token: they reach product_service (and its Redis), not the gateway's
    # cache.
    for _ in range(2):  # every pooled connection of each service is in use before the restart
        await gateway.get("/products", params={"search": "kettle"}, headers=admin)
        await gateway.get(f"/products/{kettle['id']}", headers=admin)
        await gateway.post("/cart/items", json={"productId": kettle["id"]}, headers=customer)
        await gateway.get("/cart", headers=customer)

    await asyncio.to_thread(restart_redis)

    # Each Redis-backed route once: the first command on each stale connection reconnects.
    calls = [
        ("GET", "/products", {"params": {"search": "kettle"}, "headers": admin}),
        ("GET", f"/products/{kettle['id']}", {"headers": admin}),
        ("GET", "/products/lookup", {"params": {"ids": kettle["id"]}, "headers": admin}),
        ("PATCH", f"/products/{kettle['id']}", {"json": {"price": "12.00"}, "headers": admin}),
        (
            "PUT",
            f"/products/{kettle['id']}/inventory",
            {"json": {"quantity": 30}, "headers": admin},
        ),
        ("POST", "/users/login", {"json": {"email": email, "password": "correct-horse"}}),
        ("GET", "/cart", {"headers": customer}),
        ("POST", "/cart/items", {"json": {"productId": kettle["id"]}, "headers": customer}),
        ("PUT", item, {"json": {"quantity": 3}, "headers": customer}),
        ("DELETE", item, {"headers": customer}),
        ("DELETE", "/cart", {"headers": customer}),
    ]
    answers = [
        (method, path, (await gateway.request(method, path, **kwargs)).status_code)
        for method, path, kwargs in calls
    ]
    assert [a for a in answers if a[2] >= 500] == []
    assert [a[2] for a in answers] == [200, 200, 200, 200, 200, 200, 200, 201, 200, 200, 204]


async def test_the_catalog_outlives_product_service_from_the_gateways_cache(
    gateway: httpx.AsyncClient, admin_token, customer
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=5)
    page = f"/products/{kettle['id']}"
    listing = ("/products", {"search": kettle["name"].split()[-1]})
    # A request with a token (a customer's, the back office's) never comes from the cache, nor
    # goes into it.
    mine = await gateway.get(page, headers=customer)
    assert mine.status_code == 200 and mine.headers["X-Cache-Status"] == "BYPASS"
    first = await gateway.get(page)
    assert first.headers["X-Cache-Status"] == "MISS"
    assert (await gateway.get(page)).headers["X-Cache-Status"] == "HIT"
    assert (await gateway.get(listing[0], params=listing[1])).json()["total"] == 1
    assert "X-Cache-Status" not in (await gateway.get("/cart", headers=customer)).headers

    pid_file = ROOT / ".run" / "test" / "product_service.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    try:
        stale = await eventually(
            lambda: gateway.get(page),
            until=lambda r: r.headers.get("X-Cache-Status") == "STALE",
            what="the gateway serving its copy of the page",
        )
        assert stale.status_code == 200 and stale.json() == first.json()
        shelf = await gateway.get(listing[0], params=listing[1])
        assert shelf.status_code == 200 and shelf.headers["X-Cache-Status"] == "STALE"
        assert shelf.json()["items"][0]["id"] == kettle["id"]
        # What was never read, and what a token asks for, cannot be answered.
        unread = await gateway.get("/products", params={"search": new_email()})
        assert unread.status_code == 503 and error_of(unread)["code"] == "service_unavailable"
        assert (await gateway.get(page, headers=customer)).status_code == 503
    finally:
        await asyncio.to_thread(stack_command, "start")
    fresh = await eventually(
        lambda: gateway.get(page),
        until=lambda r: r.status_code == 200 and r.headers["X-Cache-Status"] != "STALE",
        timeout=20,
        what="the page fresh again once product_service is back",
    )
    assert fresh.json()["id"] == kettle["id"]
