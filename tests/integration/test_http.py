"""A service's HTTP connections under uvicorn: an unexpected error costs its own request only."""

from __future__ import annotations

import httpx

from tests.support import Served
from tests.unit.test_runtime import small_app


async def test_a_500_leaves_the_keep_alive_connection_usable():
    served = Served(small_app)
    await served.start()
    try:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=served.url, limits=limits) as client:
            before = (await client.get("/peer")).json()["port"]
            failed = await client.get("/boom")
            assert failed.status_code == 500
            assert failed.json()["error"]["code"] == "internal_error"
            assert failed.headers.get("connection") != "close"
            after = await client.get("/peer")
            # The same client port: the very connection the 500 went out on served the next.
            assert after.status_code == 200 and after.json()["port"] == before
    finally:
        await served.stop()
