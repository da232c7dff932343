"""`make drill`: the recovery drill on the dev stack, measured (needs `make dev`).

1. a backup (the first one turns WAL archiving on);
2. customers order continuously through the gateway; at an instant T in the middle of it the
   drill notes T, and the load goes on;
3. RPO: how old the newest archived WAL is when the load stops, what a crash that took the
   machine with it would lose (at most ``archive_timeout``; a restore of the latest state
   from a running cluster loses nothing, it archives the current WAL first);
4. the restore to T, as `make restore-db FORCE=1 TIME=T` does it: the services stopped, the
   cluster restored, the broker's queues emptied and the outboxes' last 30 minutes sent
   again, the services started; RTO: from the start of the restore until every service and
   the gateway answer /ready;
5. the orders: every one answered before T exists, none sent after T does; then the sagas
   settle and `make verify` must report 0 violations.

It prints the report and writes it into docs/operations.md.

    .venv/bin/python scripts/drill.py [--seconds 20] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import pitr  # noqa: E402
from scripts.bench.run import checkout  # noqa: E402
from scripts.bench_import import record  # noqa: E402
from scripts.stack import insert_accounts, token_for  # noqa: E402
from scripts.verify import verify  # noqa: E402

GATEWAY = "http://127.0.0.1:8080"
PG = "postgresql://postgres@127.0.0.1:5432"
STACK = [sys.executable, str(ROOT / "scripts" / "stack.py")]


@dataclass
class Placed:
    order_id: str | None
    sent: float  # wall clock, the same clock as PostgreSQL's on this machine
    answered: float


async def place_orders(
    seconds: float, rate: float, mark_after: float, gateway: str = GATEWAY, pg: str = PG
) -> tuple[list[Placed], str]:
    """New customers at ``rate`` per second for ``seconds``; T is noted after ``mark_after``
    seconds, from PostgreSQL's clock."""
    count = int(seconds * rate)
    [owner] = await insert_accounts(f"{pg}/users", 1, role="admin", label="drill-admin")
    admin = token_for(owner)
    accounts = [token_for(c) for c in await insert_accounts(f"{pg}/users", count)]
    async with aiohttp.ClientSession(f"{gateway}/api/v1/") as api:
        body = {
            "sku": f"DRILL-{uuid.uuid4().hex[:10]}",
            "name": "Drill Item",
            "category": "drill",
            "price": "4.50",
            "currency": "EUR",
            "quantity": count,
        }
        async with api.post("products", json=body, headers=admin) as response:
            product = (await response.json())["id"]

        async def customer(n: int) -> Placed:
            sent = time.time()
            status, order = await checkout(api, accounts[n], product)
            return Placed(str(order["id"]) if status == 202 else None, sent, time.time())

        async def mark() -> str:
            await asyncio.sleep(mark_after)  # T: halfway through the load, whatever it did
            return str(await value("orders", "SELECT clock_timestamp()::text", pg=pg))

        marker = asyncio.create_task(mark())
        tasks = []
        start = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(customer(n)))
        placed = list(await asyncio.gather(*tasks))
        async with api.delete(f"products/{product}", headers=admin) as response:
            await response.read()
        return placed, await marker


async def value(database: str, sql: str, *args: object, pg: str = PG) -> Any:
    conn = await asyncpg.connect(f"{pg}/{database}")
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def epoch_of(instant: str, pg: str = PG) -> float:
    sql = "SELECT extract(epoch FROM $1::text::timestamptz)"
    return float(await value("postgres", sql, instant, pg=pg))


async def archive_age() -> float:
    """Seconds since the newest WAL segment reached the archive (pg_stat_archiver)."""
    sql = "SELECT extract(epoch FROM now() - last_archived_time) FROM pg_stat_archiver"
    return float(await value("postgres", sql))


async def existing(ids: list[str], pg: str = PG) -> set[str]:
    sql = "SELECT array_agg(id::text) FROM orders WHERE id = ANY($1::uuid[])"
    return set(await value("orders", sql, ids, pg=pg) or [])


async def settle(ids: list[str], timeout_s: float, pg: str = PG) -> int:
    """Wait until none of these orders is PENDING; how many still are at the deadline."""
    sql = "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status = 'PENDING'"
    deadline = time.monotonic() + timeout_s
    while True:
        pending = int(await value("orders", sql, ids, pg=pg))
        if pending == 0 or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(0.5)


def restore_stack(instant: str) -> float:
    """`make restore-db FORCE=1 TIME=<instant>`; the seconds until the stack is ready again."""
    cluster = pitr.Cluster.from_env()
    started = time.monotonic()
    subprocess.run([*STACK, "stop", "--name", "dev"], check=True, capture_output=True)
    pitr.restore(cluster, instant)
    print(pitr.settle_events(cluster, instant))
    subprocess.run(
        [*STACK, "start", "--name", "dev", "--gateway-port", "8080"], check=True, cwd=ROOT
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=10, help="new customers per second")
    args = parser.parse_args()
    if httpx.get(f"{GATEWAY}/health").status_code != 200:
        print("error: the dev stack is not running (make dev)", file=sys.stderr)
        return 2
    cluster = pitr.Cluster.from_env()
    print("\n".join(pitr.setup(cluster)))
    pitr.backup(cluster, "incr")

    print(f"ordering for {args.seconds:g} s at {args.rate:g} customers/s ...")
    placed, instant = asyncio.run(place_orders(args.seconds, args.rate, args.seconds / 2))
    age = asyncio.run(archive_age())
    t = asyncio.run(epoch_of(instant))
    ids = [p.order_id for p in placed if p.order_id]
    before = [p.order_id for p in placed if p.order_id and p.answered < t]
    after = [p.order_id for p in placed if p.order_id and p.sent > t]
    print(f"T = {instant}: {len(before)} orders answered before, {len(after)} sent after")

    rto = restore_stack(instant)
    found = asyncio.run(existing(ids))
    missing = sorted(set(before) - found)
    phantom = sorted(set(after) & found)
    still_pending = asyncio.run(settle(sorted(found), 180))
    report = asyncio.run(verify("", settled=False))

    ok = not missing and not phantom and not report.violations and not still_pending
    lines = [
        f"Machine: {os.cpu_count()} cores; the dev stack (`make dev`), one process per service; "
        f"command: `make drill` (`scripts/drill.py --seconds {args.seconds:g} --rate "
        f"{args.rate:g}`).",
        "",
        "| what | measured | target |",
        "|---|---|---|",
        f"| RPO, a crash that loses the machine: age of the newest archived WAL when the load "
        f"stopped | {age:.1f} s (bounded by `archive_timeout`, "
        f"{pitr.ARCHIVE_TIMEOUT_S} s) | < 5 min |",
        "| RPO, a restore of the latest state from a running cluster | 0 (the current WAL is "
        "archived first) | < 5 min |",
        f"| RTO: services stopped, cluster restored to T, queues emptied and outboxes replayed, "
        f"services and gateway ready | {rto:.1f} s | < 1 h |",
        f"| orders answered before T | {len(before)}, {len(before) - len(missing)} restored"
        f"{f', missing: {missing}' if missing else ''} | all |",
        f"| orders sent after T | {len(after)}, {len(phantom)} present after the restore | 0 |",
        f"| the sagas after the restore | {len(found)} orders, {still_pending} still PENDING "
        f"after 180 s; `make verify`: {len(report.violations)} violations | 0 |",
    ]
    lines += [f"- {v}" for v in report.violations[:20]]
    table = "\n".join(lines)
    print(table)
    record("Recovery drill, measured", table, ROOT / "docs" / "operations.md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
