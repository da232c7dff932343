"""A scenario run (load, fault, load again, settle, checks), the list of scenarios, and the
run of them all on a stack set up for it."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

from scripts.chaos.checks import LogWatch, Result, settle_and_check
from scripts.chaos.faults import (
    Fault,
    as_message,
    broker_restart,
    close_connections,
    duplicates,
    kill,
    poison,
    postgres_restart,
    publish,
    redis_down,
)
from scripts.chaos.infra import API, DB_SUFFIX, PG, SECRET, log, query, wait_until
from scripts.chaos.load import Chaos, Load, admin_headers, new_product, run_load
from scripts.chaos.report import summary_line
from scripts.stack import insert_accounts, token_for
from shared_events.events import StockLine, StockReserved
from shared_runtime.registry import SERVICES

# Load before the fault (so it hits sagas in flight) and after it healed (so the system is
# seen working again): at least this many orders accepted and this many seconds.
WARMUP_ORDERS, WARMUP_S = 10, 4.0
AFTER_ORDERS, AFTER_S = 15, 5.0


async def scenario(
    chaos: Chaos,
    key: str,
    title: str,
    fault: Callable[[Chaos, Load], Awaitable[Fault]],
    max_orders: int,
) -> Result:
    result = Result(key, title)
    started = time.monotonic()
    log(f"{title}: starting the load")
    scarce = await new_product(chaos, f"Chaos Scarce Lamp ({key})", stock=12, price="19.99")
    load = Load()
    watch = LogWatch(list(SERVICES))
    runner = asyncio.create_task(run_load(chaos, load, scarce, max_orders, 180))
    try:

        async def warmed(n: int) -> bool:
            return len(load.accepted) >= n or runner.done()

        if not await wait_until(lambda: warmed(WARMUP_ORDERS), 60, 0.1):
            result.violations.append("the load did not get going before the fault")
        await asyncio.sleep(max(0.0, started + WARMUP_S - time.monotonic()))
        log(f"{title}: injecting the fault ({len(load.accepted)} orders accepted so far)")
        try:
            outcome = await fault(chaos, load)
        except Exception as exc:
            outcome = Fault(f"failed: {exc!r}"[:200], 0, [f"the fault failed: {exc!r}"])
        result.faults, result.fault_count = outcome.summary, outcome.count
        result.violations.extend(outcome.violations)
        result.notes.extend(outcome.notes)
        mark, healed = len(load.accepted), time.monotonic()
        if not await wait_until(lambda: warmed(mark + AFTER_ORDERS), 60, 0.1):
            result.violations.append(f"fewer than {AFTER_ORDERS} orders accepted after the fault")
        await asyncio.sleep(max(0.0, healed + AFTER_S - time.monotonic()))
        result.notes.append(f"{len(load.accepted) - mark} orders accepted after the fault")
    finally:
        load.stop.set()
        await runner
    log(f"{title}: load stopped, {len(load.accepted)} orders accepted; waiting for the sagas")
    result.placed = len(load.accepted)
    result.retries = load.retries
    await settle_and_check(chaos, load, result)
    if load.abandoned:
        result.notes.append(f"{len(load.abandoned)} orders given up by their client")
    if load.refused:
        result.notes.append("refused: " + ", ".join(f"{n} {c}" for c, n in load.refused.items()))
    result.notes.append(
        f"{load.shipped} ships and {load.cancelled} cancels by the load; {load.resent} double "
        "submits answered with the same order"
    )
    failures = watch.failures(chaos.synthetic)
    if failures:
        result.notes.append(
            "handler failures in the logs: "
            + "; ".join(f"{what} x{n}" for what, n in failures.most_common(6))
        )
    result.seconds = time.monotonic() - started
    return result


SCENARIOS: list[tuple[str, str, bool]] = [
    # key, title, touches shared infrastructure
    ("dup", "duplicate and out-of-order events", False),
    ("kill-cart", "kill -9 cart_service", False),
    ("kill-order", "kill -9 order_service", False),
    ("kill-payment", "kill -9 payment_service", False),
    ("kill-product", "kill -9 product_service", False),
    ("kill-notification", "kill -9 notification_service", False),
    ("connections", "broker connections closed", False),
    ("broker-restart", "RabbitMQ stop_app / start_app", True),
    ("postgres-restart", "PostgreSQL restart", True),
    ("redis-down", "Redis down 10 s", True),
    ("poison", "poison message", False),
]


def fault_of(key: str) -> Callable[[Chaos, Load], Awaitable[Fault]]:
    if key.startswith("kill-"):
        service = f"{key.removeprefix('kill-')}_service"
        return lambda chaos, load: kill(chaos, load, service)
    return {
        "dup": duplicates,
        "connections": close_connections,
        "broker-restart": broker_restart,
        "postgres-restart": postgres_restart,
        "redis-down": redis_down,
        "poison": poison,
    }[key]


# --- the run --------------------------------------------------------------------------------------


async def setup(workers: int) -> Chaos:
    api = httpx.AsyncClient(
        base_url=API,
        timeout=10,
        trust_env=False,
        limits=httpx.Limits(max_connections=workers * 4 + 10),
    )
    admin = await asyncio.to_thread(admin_headers)
    customers = await insert_accounts(f"{PG}/users{DB_SUFFIX}", workers, label="chaos")
    chaos = Chaos(api, admin, [token_for(c, SECRET) for c in customers])
    for row in await query(
        "products",
        "SELECT id, available_quantity + reserved_quantity + sold_quantity FROM products",
    ):
        chaos.initial[str(row[0])] = int(row[1])  # the demo catalog, as loaded
    prices = ["9.90", "14.50", "3.25", "27.00"]
    for n, price in enumerate(prices):
        chaos.plenty.append(await new_product(chaos, f"Chaos Mug {n}", 20_000, price))
    # A well-formed event no handler can apply: order_service retries it, then parks it.
    poison_event = StockReserved(
        order_id=uuid.uuid4(),
        items=[StockLine(product_id=uuid.UUID(chaos.plenty[0].id), quantity=1)],
    )
    await publish([as_message(poison_event, poison_event.order_id)])
    chaos.retry_poison = (str(poison_event.id), time.monotonic())
    chaos.synthetic.add(str(poison_event.order_id))
    return chaos


async def run(args: argparse.Namespace) -> list[Result]:
    chaos = await setup(args.workers)
    results = []
    try:
        for key, title, shared in SCENARIOS:
            if args.only and key not in args.only:
                continue
            if shared and args.local_only:
                continue
            result = await scenario(chaos, key, title, fault_of(key), args.max_orders)
            results.append(result)
            print(summary_line(result), flush=True)
            for violation in result.violations[:10]:
                print(f"    VIOLATION: {violation}", flush=True)
    finally:
        await chaos.api.aclose()
    return results
