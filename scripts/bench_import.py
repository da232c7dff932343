"""Benchmark the bulk import: 100,000 products as CSV through the gateway, timed.

Needs the system started by `make dev`. Imports 100,000 new products (category "bench"),
then the same file again with every product inactive (the update path), which also hides
them from the storefront. Prints the figures and records them in docs/benchmarks.md.

    .venv/bin/python scripts/bench_import.py [--rows 100000] [--gateway http://localhost:8080]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.stack import admin_token as stack_admin_token  # noqa: E402

BENCH_ADMIN = ("bench-admin@example.com", "bench-admin-password")


def csv_rows(rows: int, run: str, active: bool) -> bytes:
    lines = ["sku,name,description,category,price,currency,quantity,active"]
    flag = "true" if active else "false"
    for n in range(rows):
        lines.append(
            f"BENCH-{run}-{n:06d},Bench Product {n},"
            f"Generated product number {n} for the import benchmark,bench,"
            f"{(n % 500) + 1}.{n % 100:02d},EUR,{n % 50},{flag}"
        )
    return ("\n".join(lines) + "\n").encode()


def admin_token(gateway: str) -> str:
    return stack_admin_token(f"{gateway}/api/v1", *BENCH_ADMIN)


def timed_import(gateway: str, token: str, body: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    response = httpx.post(
        f"{gateway}/api/v1/products/import",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def row(what: str, rows: int, body: bytes, seconds: float) -> str:
    size = f"{len(body) / 2**20:.1f} MiB"
    return f"| {what} | {rows:,} | {size} | {seconds:.2f} | {rows / seconds:,.0f} |"


def record(section: str, text: str, path: Path | None = None) -> None:
    """Replace (or add) one '## section' of docs/benchmarks.md (or of ``path``)."""
    path = path or ROOT / "docs" / "benchmarks.md"
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    head, marker, rest = existing.partition(f"\n## {section}\n")
    tail = rest[rest.find("\n## ") :] if marker and "\n## " in rest else ""
    path.write_text(head.rstrip() + f"\n\n## {section}\n\n{text.strip()}\n" + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--gateway", default="http://localhost:8080")
    args = parser.parse_args()

    token = admin_token(args.gateway)
    run = uuid.uuid4().hex[:6]
    create_body = csv_rows(args.rows, run, active=True)
    created_s, created = timed_import(args.gateway, token, create_body)
    assert created["created"] == args.rows and created["rejected"] == 0, created
    update_body = csv_rows(args.rows, run, active=False)
    updated_s, updated = timed_import(args.gateway, token, update_body)
    assert updated["updated"] == args.rows and updated["rejected"] == 0, updated

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    table = f"""
Machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} {platform.machine()},
Python {platform.python_version()}; commit `{commit}`; everything (PostgreSQL, Redis, nginx,
the services) on the same machine, as `make dev` starts it.

Command: `make dev && make bench-import` (`scripts/bench_import.py --rows {args.rows}`)

| what | rows | file | seconds | rows/s |
|---|---:|---:|---:|---:|
{row("import, all new (CSV through the gateway)", args.rows, create_body, created_s)}
{row("import again, all updates", args.rows, update_body, updated_s)}

Target: 100,000 rows in under 15 s.
"""
    print(table)
    record("Bulk import", table)


if __name__ == "__main__":
    main()
