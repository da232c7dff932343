"""The API's documentation through the gateway: every service's OpenAPI, rendered by Swagger UI
from files the system serves itself, in a browser that can reach nothing but this machine."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.conftest import GATEWAY_PORT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, installed by make test
SPECS = ["users", "products", "cart", "orders", "payments", "notifications"]


async def test_every_service_publishes_its_openapi_through_the_gateway(gateway):
    for name in SPECS:
        spec = (await gateway.get(gateway.base_url.join(f"/api/v1/docs/{name}.json"))).json()
        assert spec["servers"][0]["url"] == "/api/v1"
        assert spec["paths"] and "/health" not in spec["paths"], name
        schemes = spec["components"]["securitySchemes"]
        assert schemes["HTTPBearer"] == {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The accessToken of POST /api/v1/users/login.",
        }
        # Every route that takes a token says so; the public ones do not.
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                secured = operation.get("security") == [{"HTTPBearer": []}]
                public = (path, method) in {
                    ("/users/register", "post"),
                    ("/users/login", "post"),
                    ("/users/verify", "post"),
                    ("/users/password-reset", "post"),
                    ("/users/password-reset/confirm", "post"),
                } or (path.startswith("/products") and method == "get")
                assert secured != public, (name, method, path)


def render(url: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran, and a screenshot, by headless Chromium that may
    resolve no host but this one (anything from elsewhere would fail to load)."""
    with tempfile.TemporaryDirectory() as profile:
        common = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--window-size=1280,2000",
        ]
        subprocess.run([*common, f"--screenshot={screenshot}", url], check=True, timeout=90)
        return subprocess.run(
            [*common, "--dump-dom", url], check=True, timeout=90, capture_output=True, text=True
        ).stdout


async def test_the_docs_render_offline_in_a_browser(stack, tmp_path):
    url = f"http://127.0.0.1:{GATEWAY_PORT}/api/v1/docs?orders"
    shot = tmp_path / "docs.png"
    dom = await asyncio.to_thread(render, url, shot)
    # Swagger UI drew the operations of the orders API (from the spec it fetched).
    assert 'class="swagger-ui' in dom
    for operation in ["/orders/{order_id}/cancel", "/orders/{order_id}/ship"]:
        assert operation in dom, operation
    assert "Authorize" in dom  # the bearer scheme
    assert shot.stat().st_size > 20_000  # a page with something drawn on it, not a blank one
