"""The web client's types (web/src/api/types/<name>.ts), made by openapi-typescript from every
service's OpenAPI document.

    .venv/bin/python scripts/openapi.py          # regenerate
    .venv/bin/python scripts/openapi.py --check  # exit 1 if anything would change

The documents come from the apps themselves (no service needs to run); the gateway serves the
same ones under /api/v1/docs/<name>.json. tests/unit/test_openapi_client.py runs --check, so the
typed client never drifts from the API.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared_runtime.registry import SERVICES  # noqa: E402

OUT = ROOT / "web" / "src" / "api" / "types"
GENERATOR = ROOT / "node_modules" / ".bin" / "openapi-typescript"


def api_name(service: str) -> str:
    """users, products, cart, orders, payments, notifications: as the gateway names them."""
    return SERVICES[service].database or "cart"


def documents() -> dict[str, dict]:
    # Settings that only let the apps be built: nothing is connected to, nothing is signed.
    os.environ.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
    found = {}
    for service in SERVICES:
        app_module = importlib.import_module(f"{service}.app")
        app = app_module.create_app(app_module.Settings())
        found[api_name(service)] = app.openapi()
    return found


def generate(into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, document in documents().items():
            spec = Path(tmp) / f"{name}.json"
            spec.write_text(json.dumps(document))
            subprocess.run(
                [str(GENERATOR), str(spec), "--output", str(into / f"{name}.ts")],
                check=True,
                capture_output=True,
            )


def differences(made: Path, kept: Path) -> list[str]:
    names = {p.name for p in made.glob("*.ts")} | {p.name for p in kept.glob("*.ts")}
    return sorted(
        name
        for name in names
        if not (made / name).is_file()
        or not (kept / name).is_file()
        or (made / name).read_bytes() != (kept / name).read_bytes()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not args.check:
        generate(OUT)
        print(f"wrote {OUT.relative_to(ROOT)}/*.ts")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = differences(Path(tmp), OUT)
    if stale:
        print("out of date (run scripts/openapi.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
