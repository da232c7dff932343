"""The storefront in a browser (Debian's Chromium, driven by Playwright) through the gateway:
a shopper registers, searches, fills a cart, checks out and watches the order page follow the
saga without reloading; declines and sold-out items read clearly; every page passes an axe-core
scan and is photographed at desktop and phone width (.run/test/screenshots/)."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import expect

from tests.e2e.browser import ORIGIN, photographed, signed_in
from tests.e2e.test_accounts import link_token, login, register
from tests.e2e.test_orders import ADDRESS, new_product, order, settled
from tests.support import new_accounts


async def test_a_shopper_orders_and_watches_the_saga_live(page, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    tag = uuid.uuid4().hex[:6]
    lamp = await new_product(gateway, admin, stock=5, price="19.90")
    mug = await new_product(gateway, admin, stock=5, price="7.25")
    for product, name in [(lamp, f"Reading Lamp {tag}"), (mug, f"Tea Mug {tag}")]:
        renamed = await gateway.patch(
            f"/products/{product['id']}", json={"name": name}, headers=admin
        )
        assert renamed.status_code == 200, renamed.text

    await page.goto("/register")
    await page.get_by_label("Full name").fill("Ada Shopper")
    await page.get_by_label("E-mail").fill(f"ada-{tag}@example.com")
    await page.get_by_label("Password").fill("correct-horse")
    await photographed(page, "register")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()

    await page.get_by_label("Search").fill(tag)
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_text("2 products")).to_be_visible()
    await photographed(page, "catalog")
    for name in [f"Reading Lamp {tag}", f"Tea Mug {tag}"]:
        await page.get_by_role("link", name=name).click()
        await expect(page.get_by_role("heading", name=name)).to_be_visible()
        await page.get_by_role("button", name="Add to cart").click()
        await expect(page.get_by_role("status")).to_contain_text("added to your cart")
        if name.startswith("Tea Mug"):
            await photographed(page, "product")
        await page.go_back()

    await page.get_by_role("link", name="Cart").click()
    await expect(page.get_by_text(re.compile(r"Total: .*27[.,]15"))).to_be_visible()
    await photographed(page, "cart")
    await page.get_by_role("link", name="Checkout").click()
    for label, value in [
        ("Full name", ADDRESS["fullName"]),
        ("Address", ADDRESS["line1"]),
        ("City", ADDRESS["city"]),
        ("Postal code", ADDRESS["postalCode"]),
        ("Country", ADDRESS["country"]),
    ]:
        await page.get_by_label(label, exact=True).fill(value)
    await expect(page.get_by_label(re.compile("Visa test card"))).to_be_checked()
    await photographed(page, "checkout")
    await page.get_by_role("button", name="Place order").click()

    await expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    order_id = page.url.rsplit("/", 1)[1]
    await page.evaluate("window.sameDocument = true")  # gone if the page reloaded
    status = page.get_by_test_id("order-status")
    await expect(status).to_have_text("CONFIRMED", timeout=20_000)
    await photographed(page, "order-confirmed")

    shipped = await gateway.post(
        f"/orders/{order_id}/ship", json={"trackingNumber": f"DHL-{tag}"}, headers=admin
    )
    assert shipped.status_code == 200, shipped.text
    await expect(status).to_have_text("SHIPPED", timeout=20_000)
    await expect(page.get_by_text(f"DHL-{tag}")).to_be_visible()
    assert await page.evaluate("window.sameDocument === true")  # pushed, not reloaded
    await page.get_by_role("link", name="All your orders").click()
    await expect(page.get_by_role("link", name=f"Order {order_id[:8]}")).to_be_visible()
    await photographed(page, "orders")


async def test_a_declined_card_shows_the_reason(page, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=5)
    [user] = await new_accounts("users_e2e")
    added = await gateway.post(
        "/cart/items", json={"productId": product["id"], "quantity": 1}, headers=user
    )
    assert added.status_code == 201
    await signed_in(page, user)
    await page.goto("/checkout")
    for label, value in [
        ("Full name", "Dee Clined"),
        ("Address", "2 Card Road"),
        ("City", "Paris"),
        ("Postal code", "75001"),
        ("Country", "FR"),
    ]:
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_label(re.compile("Declined card")).check()
    await page.get_by_role("button", name="Place order").click()
    await expect(page.get_by_test_id("order-status")).to_have_text("CANCELLED", timeout=20_000)
    await expect(page.get_by_text("Your card was declined.")).to_be_visible()
    await photographed(page, "order-cancelled")


async def test_an_item_sold_out_before_checkout_is_said_plainly(page, gateway, admin_token):
    admin = {"Authorization": f"Bearer {admin_token}"}
    product = await new_product(gateway, admin, stock=1)
    late, early = await new_accounts("users_e2e", 2)
    added = await gateway.post(
        "/cart/items", json={"productId": product["id"], "quantity": 1}, headers=late
    )
    assert added.status_code == 201
    first = await order(gateway, early, [(product["id"], 1)])  # someone else buys the last one
    assert (await settled(gateway, early, first["id"]))["status"] == "CONFIRMED"

    await signed_in(page, late)
    await page.goto("/cart")
    await expect(page.get_by_text("Sold out since you added it")).to_be_visible()
    await page.get_by_role("link", name="Checkout").click()
    for label, value in [
        ("Full name", "Lou Late"),
        ("Address", "3 Slow Lane"),
        ("City", "Rome"),
        ("Postal code", "00100"),
        ("Country", "IT"),
    ]:
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_role("button", name="Place order").click()
    await expect(page.get_by_test_id("order-status")).to_have_text("CANCELLED", timeout=20_000)
    await expect(page.get_by_text(re.compile(r"Out of stock: .*1 ordered, 0 left"))).to_be_visible()


async def test_the_pages_are_the_gateways_and_unknown_paths_stay_json(stack):
    async with httpx.AsyncClient(base_url=ORIGIN) as client:
        for path in ["/", "/cart", "/orders/123", "/products/abc", "/login"]:
            answer = await client.get(path)
            assert answer.status_code == 200 and '<div id="root">' in answer.text, path
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy
        asset = re.search(r'src="(/assets/[^"]+\.js)"', (await client.get("/")).text)
        assert asset
        script = await client.get(asset.group(1))
        assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
        for path in ["/nope", "/admin.php", "/api/v1/nope"]:
            answer = await client.get(path)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


async def test_a_forgotten_password_and_a_verification_link_in_the_browser(page, gateway):
    email = f"forgot-{uuid.uuid4().hex[:8]}@example.com"
    user = await register(gateway, email)

    # The link of the verification e-mail: the page posts its token, the notice goes.
    await signed_in(page, {"Authorization": f"Bearer {await login(gateway, email)}"})
    await page.goto("/")
    await expect(page.get_by_text("Your e-mail address is not verified yet")).to_be_visible()
    await page.get_by_role("button", name="Send the link again").click()
    await expect(page.get_by_role("status")).to_have_text("We sent it again.")
    await photographed(page, "unverified")
    token = await link_token(user["id"], "EmailVerificationRequested")
    await page.goto(f"/verify-email#token={token}")
    await expect(page.get_by_role("status")).to_contain_text("your e-mail address is verified")
    await expect(page.get_by_text("Your e-mail address is not verified yet")).to_have_count(0)
    await photographed(page, "verified")
    await page.get_by_role("button", name="Log out").click()

    # A forgotten password: asked for from the login page, set from the e-mail's link, once.
    await page.goto("/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Send me a link").click()
    await expect(page.get_by_role("status")).to_contain_text("If an account has this address")
    await photographed(page, "forgot-password")
    token = await link_token(user["id"], "PasswordResetRequested")
    await page.goto(f"/reset-password#token={token}")
    await page.get_by_label("New password", exact=True).fill("a-new-horse-9")
    await page.get_by_label("The new password again").fill("a-new-horse-8")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    await page.get_by_label("The new password again").fill("a-new-horse-9")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password is set")
    await photographed(page, "reset-password")
    await page.goto("/")
    await page.goto(f"/reset-password#token={token}")  # the same link again, opened anew
    await page.get_by_label("New password", exact=True).fill("another-horse-7")
    await page.get_by_label("The new password again").fill("another-horse-7")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("alert")).to_contain_text("already used")
    await login(gateway, email, "a-new-horse-9")
