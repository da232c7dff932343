"""The web client's types (web/src/api/types) are generated from the services' OpenAPI
documents by scripts/openapi.py: they must match the API as it is now."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_the_typed_client_matches_every_services_openapi():
    check = subprocess.run(
        [sys.executable, "scripts/openapi.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
    assert {p.stem for p in (ROOT / "web" / "src" / "api" / "types").glob("*.ts")} == {
        "users", "products", "cart", "orders", "payments", "notifications"
    }  # fmt: skip
