"""scripts/smoke.py, the smoke test CI runs against staging, against the test stack: it passes
on a healthy shop, and fails with a reason when the shop does not answer."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.support import ROOT


def smoke(gateway: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "smoke.py"), "--gateway", gateway, *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


async def test_the_smoke_test_orders_through_the_whole_saga(stack: str):
    result = await asyncio.to_thread(smoke, stack)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines if line.startswith("ok")][-2:] == [
        "ok   the saga confirmed the order",
        "ok   the cart was emptied by the order",
    ]
    assert lines[-1] == "smoke test passed"


def test_the_smoke_test_fails_with_a_reason_when_nothing_answers():
    result = smoke("http://127.0.0.1:9", "--timeout", "5")  # the discard port: nothing listens
    assert result.returncode == 1
    assert result.stderr.startswith("FAIL GET /health: no answer")
