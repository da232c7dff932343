"""The back office at /admin in a browser (Debian's Chromium through the gateway): an
administrator finds an order and ships it while the shopper's open order page turns SHIPPED by
itself; cancels one with a reason; edits a product's stock; imports a CSV with a bad line and
reads that line's error. Every page passes axe-core and is photographed."""

from __future__ import annotations

import json
import re
import uuid

import aio_pika
from playwright.async_api import Browser, expect

from shared_events.events import UserRegistered
from shared_events.topology import ATTEMPT_HEADER, ERROR_HEADER, parked_queue_name
from tests.e2e.browser import ORIGIN, photographed, signed_in
from tests.e2e.conftest import DESKTOP
from tests.e2e.test_orders import new_product, order, product_state, settled
from tests.support import AMQP_URL, error_of, new_accounts


async def test_the_shop_ships_and_the_shoppers_page_follows(browser: Browser, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    [user] = await new_accounts("users_e2e")
    placed = await order(gateway, user, [(product["id"], 1)])

    shopper = await browser.new_context(base_url=ORIGIN, viewport=DESKTOP)
    shop = await browser.new_context(base_url=ORIGIN, viewport=DESKTOP)
    try:
        watching = await shopper.new_page()
        await signed_in(watching, user)
        await watching.goto(f"/orders/{placed['id']}")
        await expect(watching.get_by_test_id("order-status")).to_have_text("CONFIRMED")
        await watching.evaluate("window.sameDocument = true")

        page = await shop.new_page()
        await signed_in(page, admin)
        await page.goto("/admin")
        await page.get_by_label("Order id or customer e-mail").fill(placed["id"][:8])
        await page.get_by_role("button", name="Show").click()
        await expect(page.get_by_text("1 orders")).to_be_visible()
        assert placed["id"][:8] not in page.url  # what was searched for stays out of the URL
        await photographed(page, "admin-orders")
        await page.get_by_role("link", name=placed["id"][:8]).click()
        await expect(page.get_by_test_id("order-status")).to_have_text("CONFIRMED")
        await expect(page.get_by_text(re.compile("authorised"))).to_be_visible()  # payments
        await photographed(page, "admin-order")
        await page.get_by_label("Tracking number").fill("UPS-BACK-1")
        await page.get_by_role("button", name="Ship").click()
        await expect(page.get_by_test_id("order-status")).to_have_text("SHIPPED")

        await expect(watching.get_by_test_id("order-status")).to_have_text("SHIPPED")
        await expect(watching.get_by_text("UPS-BACK-1")).to_be_visible()
        assert await watching.evaluate("window.sameDocument === true")  # pushed, not reloaded
    finally:
        await shopper.close()
        await shop.close()


async def test_the_shop_cancels_with_a_reason(page, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    [user] = await new_accounts("users_e2e")
    placed = await order(gateway, user, [(product["id"], 2)])
    await settled(gateway, user, placed["id"])
    await signed_in(page, admin)
    await page.goto(f"/admin/orders/{placed['id']}")
    await page.get_by_label("Reason for cancelling").fill("Address outside our delivery area.")
    await page.get_by_role("button", name="Cancel order").click()
    await expect(page.get_by_test_id("order-status")).to_have_text("CANCELLED")
    reason = "Cancelled by the shop: Address outside our delivery area."
    await expect(page.get_by_text(reason, exact=True)).to_be_visible()
    mine = (await gateway.get(f"/orders/{placed['id']}", headers=user)).json()
    assert mine["cancelReason"] == reason  # what the customer reads


async def test_the_shop_edits_stock_and_imports_a_file_with_a_bad_line(page, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    await signed_in(page, admin)
    await page.goto("/admin/products")
    await page.get_by_label("Search products").fill(product["name"])
    await page.get_by_role("button", name="Find").click()
    row = page.get_by_role("form", name=f"Edit {product['name']}")
    await row.get_by_label("Stock").fill("42")
    await row.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    assert (await product_state(gateway, admin, product["id"]))["availableQuantity"] == 42
    await photographed(page, "admin-products")
    await row.get_by_role("button", name="Take off sale").click()
    await expect(row.get_by_text("Off sale", exact=True)).to_be_visible()  # listed for the staff
    assert (await product_state(gateway, admin, product["id"]))["active"] is False
    await row.get_by_role("button", name="Put on sale").click()
    await expect(row.get_by_role("button", name="Take off sale")).to_be_visible()
    assert (await product_state(gateway, admin, product["id"]))["active"] is True

    tag = uuid.uuid4().hex[:8].upper()
    csv = (
        "sku,name,description,category,price,currency,quantity,active,imageUrl\n"
        f"IMP-{tag}-1,Import Good {tag},,kitchen,3.50,EUR,7,true,\n"
        f"IMP-{tag}-2,Import Bad {tag},,kitchen,not-a-price,EUR,7,true,\n"
    )
    await page.goto("/admin/import")
    await page.get_by_label("File").set_input_files(
        files=[{"name": "products.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    await page.get_by_role("button", name="Import").click()
    status = page.get_by_role("status")
    await expect(status).to_contain_text("Done: 2 lines read, 1 created, 0 updated, 1 rejected")
    rejected = page.get_by_role("table", name="Rejected lines")
    await expect(rejected.get_by_role("row", name=re.compile(f"3 IMP-{tag}-2"))).to_be_visible()
    await expect(rejected).to_contain_text("price")
    await photographed(page, "admin-import")


async def park(service: str, event: UserRegistered, error: str) -> None:
    """A message as the consumer parks it (attempts and error in its headers), put straight
    into ``<service>.parked`` of the test stack's vhost."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                event.to_json(),
                message_id=str(event.id),
                type=event.event_type(),
                content_type="application/json",
                headers={ATTEMPT_HEADER: 5, ERROR_HEADER: error, "x-failed-at": "2026-12-03"},
            ),
            routing_key=parked_queue_name(service),
        )


def welcome(tag: str) -> UserRegistered:
    return UserRegistered(
        user_id=uuid.uuid4(), email=f"parked-{tag}@example.com", full_name="Parked Person"
    )


async def test_the_shop_sees_each_services_queue_and_replays_what_was_parked(
    gateway, admin_token, customer
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    status = "/services/notification_service/admin/status"
    for headers, code in [({}, 401), (customer, 403)]:
        refused = await gateway.get(status, headers=headers)
        assert refused.status_code == code and error_of(refused)
    first, second = welcome(uuid.uuid4().hex[:8]), welcome(uuid.uuid4().hex[:8])
    await park("notification_service", first, "SendGrid answered 503")
    await park("notification_service", second, "SendGrid answered 503")

    seen = (await gateway.get(status, headers=admin)).json()
    assert seen["ready"] is True and seen["checks"]["database"] == "ok"
    assert seen["queue"]["name"] == "notification_service" and seen["queue"]["consumers"] >= 1
    mine = {p["messageId"]: p for p in seen["parked"]}
    assert seen["queue"]["parked"] >= 2 and {str(first.id), str(second.id)} <= set(mine)
    assert mine[str(first.id)]["error"] == "SendGrid answered 503"
    assert mine[str(first.id)]["eventType"] == "UserRegistered"
    # Read in the back office, a body's personal fields are masked (the message is not).
    shown = json.loads(mine[str(first.id)]["body"])
    assert shown["email"] == shown["fullName"] == "[REDACTED]"
    assert shown["userId"] == str(first.user_id)
    assert first.email not in str(seen)

    one = await gateway.post(
        "/services/notification_service/admin/parked/replay",
        json={"messageId": str(first.id)},
        headers=admin,
    )
    assert one.status_code == 200 and one.json()["moved"] == 1, one.text
    left = (await gateway.get(status, headers=admin)).json()["parked"]
    assert str(first.id) not in {p["messageId"] for p in left}
    assert str(second.id) in {p["messageId"] for p in left}
    gone = await gateway.post(
        "/services/notification_service/admin/parked/replay",
        json={"messageId": str(first.id)},
        headers=admin,
    )
    assert gone.json()["moved"] == 0  # no longer parked
    everything = await gateway.post(
        "/services/notification_service/admin/parked/replay", headers=admin
    )
    assert everything.json()["remaining"] == 0

    users = (await gateway.get("/services/user_service/admin/status", headers=admin)).json()
    assert users["queue"] is None and users["ready"] is True  # it consumes no events
    unknown = await gateway.get("/services/nobody_service/admin/status", headers=admin)
    assert unknown.status_code == 404
    overview = (await gateway.get("/orders/overview", headers=admin)).json()
    assert set(overview["counts"]) == {"PENDING", "CONFIRMED", "SHIPPED", "CANCELLED"}
    denied = await gateway.get("/orders/overview", headers=customer)
    assert denied.status_code == 403


async def test_the_health_page_replays_parked_messages_until_none_is_left(
    page, gateway, admin_token
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    parked = welcome(uuid.uuid4().hex[:8])
    await park("notification_service", parked, "Twilio answered 500 for this one")
    await signed_in(page, admin)
    await page.goto("/admin/health")
    count = page.get_by_test_id("parked-notification_service")
    await expect(count).not_to_have_text("0")
    await expect(page.get_by_text("Twilio answered 500 for this one")).to_be_visible()
    await expect(page.get_by_role("row", name=re.compile("^order_service ready"))).to_be_visible()
    await photographed(page, "admin-health")
    await page.get_by_role("button", name="Replay all of notification_service").click()
    await expect(count).to_have_text("0")
    await expect(page.get_by_text("Twilio answered 500 for this one")).to_have_count(0)
    status = await gateway.get("/services/notification_service/admin/status", headers=admin)
    assert status.json()["queue"]["parked"] == 0
