"""A killed service: the gateway answers 503 in the error shape, and no event is lost."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx

from tests.e2e.conftest import stack_command
from tests.e2e.test_accounts import login, new_email, register
from tests.support import ROOT, error_of, eventually


async def test_killed_notification_service_loses_no_welcome_email(
    gateway: httpx.AsyncClient,
):
    pid_file = ROOT / ".run" / "test" / "notification_service.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)

    email = new_email()
    await register(gateway, email)  # UserRegistered waits in the durable queue
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
        what="the welcome e-mail after the restart",
    )
    assert response.json()["items"][0]["template"] == "welcome"
