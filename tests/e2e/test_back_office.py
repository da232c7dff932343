"""The back office at /admin in a browser (Debian's Chromium through the gateway): an
administrator finds an order and ships it while the shopper's open order page turns SHIPPED by
itself; cancels one with a reason; edits a product's stock; imports a CSV with a bad line and
reads that line's error. Every page passes axe-core and is photographed."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, expect

from tests.e2e.browser import ORIGIN, photographed, signed_in
from tests.e2e.conftest import DESKTOP
from tests.e2e.test_orders import new_product, order, product_state, settled
from tests.support import new_accounts


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
