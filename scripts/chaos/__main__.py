"""`make chaos`: the order saga under faults, with its invariants checked after each one.

It starts a stack of its own ("chaos": gateway :28080, services :25001-25106, databases
*_chaos, RabbitMQ vhost ecommerce_chaos, Redis db 13), creates products as an admin, and runs
each scenario under a steady order load: customers fill a cart and POST /orders with an
Idempotency-Key (the same key again on a 5xx or a broken connection), with good and declined
cards, racing for a product with little stock; an admin ships some confirmed orders and their
owners cancel others. After each scenario the load stops, the sagas settle (no order PENDING)
and the checks run: scripts/verify.py, stock conservation per product (initial stock =
available + reserved + sold), and every order the load got a 202 for exists once (by its key)
and ended CONFIRMED, SHIPPED or CANCELLED, without needing the saga deadline.

Scenarios: duplicate and out-of-order events; kill -9 of each consumer service in turn;
the broker's connections closed; RabbitMQ stopped and started; PostgreSQL restarted; Redis
stopped for 10 s; a poison message. It prints a line per scenario and a table, and writes
docs/reliability.md. The stack is stopped at the end, also on failure.

    .venv/bin/python -m scripts.chaos [--workers 10] [--only dup,kill-order,...] [--local-only]
        [--replicas 2]

Careful: broker-restart, postgres-restart and redis-down stop infrastructure that every stack
on this machine shares (a running dev or test stack reconnects; Redis has no persistence
locally, so their carts and caches are emptied). --local-only skips them.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path

import redis

# As scripts/stack.py does: the repository root importable. `python -m scripts.chaos` from the
# root has it already; this is for `python scripts/chaos`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.chaos.infra import (
    REDIS_URL,
    RUN,
    STACK_ENV,
    drop_databases,
    log,
    prepare_broker,
    stack,
)
from scripts.chaos.report import table, write_report
from scripts.chaos.scenarios import SCENARIOS, run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.chaos",  # not "__main__.py", argparse's default under -m
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=10, help="customers ordering at a time")
    parser.add_argument("--max-orders", type=int, default=1500, help="per scenario")
    parser.add_argument(
        "--only", type=lambda s: s.split(","), default=None, help="scenario keys, comma-separated"
    )
    parser.add_argument(
        "--local-only",
        action="store_true",
        help="skip the scenarios that stop shared infrastructure",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        choices=range(1, 10),
        metavar="N",
        help="processes of every service (writes docs/reliability-replicas.md)",
    )
    args = parser.parse_args()
    STACK_ENV["STACK_REPLICAS"] = str(args.replicas)
    if args.only:
        unknown = set(args.only) - {key for key, _, _ in SCENARIOS}
        if unknown:
            parser.error(
                f"unknown scenarios {sorted(unknown)}; known: {[k for k, _, _ in SCENARIOS]}"
            )
    command = shlex.join([".venv/bin/python", "-m", "scripts.chaos", *sys.argv[1:]])
    started = time.monotonic()

    log("preparing: stopping an earlier chaos stack, a clean vhost, databases and Redis db")
    stack("stop")
    prepare_broker()
    asyncio.run(drop_databases())
    redis.Redis.from_url(REDIS_URL).flushdb()
    for old in (RUN / "logs").glob("*.log"):
        old.unlink()
    try:
        log("starting the chaos stack")
        stack("start")
        results = asyncio.run(run(args))
    finally:
        log("stopping the chaos stack")
        stack("stop")
    total = time.monotonic() - started
    print()
    print(table(results))
    write_report(results, command, total, args.workers, args.replicas)
    violations = sum(len(r.violations) for r in results)
    report = "docs/reliability-replicas.md" if args.replicas > 1 else "docs/reliability.md"
    log(f"done in {total:.0f} s: {violations} violation(s); {report} written")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
