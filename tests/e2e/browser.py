"""What the browser tests share (test_storefront, test_back_office): Debian's Chromium driven by
Playwright through the gateway (fixtures ``browser`` and ``page`` in conftest.py), an axe-core
scan, and screenshots at desktop and phone width in .run/test/screenshots/."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.e2e.conftest import DESKTOP, ORIGIN, SHOTS
from tests.support import ROOT

__all__ = ["ORIGIN", "accessible", "photographed", "signed_in"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


async def accessible(page: Page) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    # Evaluated by the browser's tools, not as a script of the page: the page's CSP stays on.
    await page.evaluate(AXE.read_text())
    result: dict[str, Any] = await page.evaluate("axe.run(document)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: " + "; ".join(bad)


async def photographed(page: Page, name: str) -> None:
    """The page checked by axe and saved at desktop and at phone width."""
    await accessible(page)
    await page.screenshot(path=SHOTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await accessible(page)
    await page.screenshot(path=SHOTS / f"{name}-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)


async def signed_in(page: Page, headers: dict[str, str]) -> None:
    token = headers["Authorization"].removeprefix("Bearer ")
    await page.add_init_script(f"localStorage.setItem('shop.accessToken', {token!r})")
