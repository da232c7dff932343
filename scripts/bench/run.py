"""`make bench`: throughput and latency of the system as `make dev` runs it, on this machine.

1. catalog reads through the gateway with wrk (a mix of product pages and searches):
   requests/s, p50/p95/p99, errors, cache hit ratio;
2. the order saga: simulated customers fill a cart and order with pm_card_visa; orders/s
   reaching CONFIRMED and the time from POST /orders to CONFIRMED (from the saga timeline),
   then the invariant checker. Twice: 50 customers at a time as fast as they can (the most
   orders/s; their latency is mostly the backlog they build), then a fixed rate of new
   customers whatever the system does (open loop: the latency at a rate it sustains);
3. bulk import of 100,000 products;
4. peak memory (VmHWM) of each service process.

It prints a table and writes it into docs/benchmarks.md with the machine and the commit.
All load comes from this machine's loopback address, so the gateway's per-address rate limit
is raised for the run and put back afterwards.

    .venv/bin/python scripts/bench/run.py [--duration 30] [--connections 64] [--orders 1000]
        [--rate N] [--only catalog|saga]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench.measure import cpu_seconds, metric, peak_memory, settle  # noqa: E402
from scripts.bench_import import admin_token, csv_rows, record, timed_import  # noqa: E402
from scripts.stack import insert_accounts, jwt_secret, token_for  # noqa: E402
from scripts.verify import verify  # noqa: E402
from shared_runtime.registry import SERVICES  # noqa: E402

GATEWAY = "http://127.0.0.1:8080"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
ADDRESS = {
    "fullName": "Bench Customer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


def set_gateway_rate(rate: str) -> None:
    env = dict(os.environ, GATEWAY_API_RATE=rate)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), "start", "--name", "dev"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip


def cache_counts() -> tuple[float, float]:
    # The dev stack's first product_service process, on its internal port (where /metrics is).
    text = httpx.get(f"{SERVICES['product_service'].internal_url()}/metrics").text
    hits = metric(text, "cache_requests_total", {"result": "hit"})
    misses = metric(text, "cache_requests_total", {"result": "miss"})
    return hits, misses


def catalog(duration: int, connections: int) -> dict[str, Any]:
    products = httpx.get(f"{GATEWAY}/api/v1/products", params={"pageSize": 100}).json()["items"]
    paths = [f"/api/v1/products/{p['id']}" for p in products]
    words = ["mug", "walnut", "camping", "lamp", "kettle", "guide", "ceramic", "wireless"]
    paths += [f"/api/v1/products?search={w}" for w in words]
    paths += [f"/api/v1/products?category=kitchen&page={n}" for n in range(1, 4)]
    paths += ["/api/v1/products?minPrice=10&maxPrice=40&sort=price"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
        file.write("\n".join(paths))
    for path in paths:  # warm the cache, as a shop's would be
        httpx.get(f"{GATEWAY}{path}")
    hits0, misses0 = cache_counts()
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
         "-s", str(ROOT / "scripts" / "bench" / "catalog.lua"), GATEWAY],
        capture_output=True, text=True, check=True, env=dict(os.environ, BENCH_PATHS=file.name),
    )  # fmt: skip
    os.unlink(file.name)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    hits1, misses1 = cache_counts()
    hits, misses = hits1 - hits0, misses1 - misses0
    stats["rps"] = stats["requests"] / stats["seconds"]
    # What the gateway answered from its own cache, and of the rest, what the service's Redis did.
    stats["gateway_ratio"] = 1 - (hits + misses) / stats["requests"] if stats["requests"] else 0
    stats["cache_hit_ratio"] = hits / (hits + misses) if hits + misses else 0.0
    stats["mix"] = f"{len(products)} product pages, {len(paths) - len(products)} searches/lists"
    return stats


async def checkout(
    api: aiohttp.ClientSession, auth: dict[str, str], product_id: str
) -> tuple[int, dict[str, Any]]:
    """One customer: one of the product in the cart, then the order, paid with pm_card_visa;
    the answer's status and body."""
    line = {"productId": product_id, "quantity": 1}
    async with api.post("cart/items", json=line, headers=auth) as added:
        await added.read()
    async with api.post(
        "orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
    ) as placed:
        return placed.status, await placed.json()


async def saga(orders: int, concurrency: int, rate: float | None = None) -> dict[str, Any]:
    """``concurrency`` customers at a time, as fast as they can (the most the system does), or,
    with ``rate``, a new customer every 1/rate s whatever the system does (open loop: the
    latency at that sustained rate, queueing included, without the closed loop hiding it)."""
    token = admin_token(GATEWAY)
    admin = {"Authorization": f"Bearer {token}"}
    secret = jwt_secret()
    # aiohttp: the load generator shares the two cores, and httpx costs far more CPU per call.
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        f"{GATEWAY}/api/v1/", connector=connector, timeout=timeout, raise_for_status=True
    ) as api:
        products = []
        for n in range(10):
            body = {
                "sku": f"SAGA-{uuid.uuid4().hex[:10]}",
                "name": f"Saga Bench Item {n}",
                "category": "bench",
                "price": "9.99",
                "currency": "EUR",
                "quantity": orders,  # enough for every order
            }
            async with api.post("products", json=body, headers=admin) as response:
                products.append((await response.json())["id"])

        # Real accounts (a new customer per order), made before the clock starts.
        accounts = [token_for(c, secret) for c in await insert_accounts(f"{PG}/users", orders)]

        async def customer(n: int) -> str:
            _, order = await checkout(api, accounts[n], products[n % 10])
            return str(order["id"])

        semaphore = asyncio.Semaphore(concurrency)

        async def limited(n: int) -> str:
            async with semaphore:
                return await customer(n)

        async def paced() -> list[str]:
            tasks = []
            start = time.monotonic()
            for n in range(orders):
                assert rate is not None
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                tasks.append(asyncio.create_task(customer(n)))
            return list(await asyncio.gather(*tasks))

        cpu_before = cpu_seconds()
        started = time.time()
        if rate:
            ids = await paced()
        else:
            ids = await asyncio.gather(*(limited(n) for n in range(orders)))
        posted_s = time.time() - started

    conn = await asyncpg.connect(f"{PG}/orders")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status = 'PENDING'",
                ids,
            )
            if pending == 0:
                break
            await asyncio.sleep(0.5)
        rows = await conn.fetch(
            "SELECT o.status, o.created_at, t.at AS confirmed_at FROM orders o "
            "LEFT JOIN order_timeline t ON t.order_id = o.id AND t.event = 'OrderConfirmed' "
            "WHERE o.id = ANY($1::uuid[])",
            ids,
        )
    finally:
        await conn.close()
    confirmed = [r for r in rows if r["confirmed_at"] is not None]
    latencies = sorted((r["confirmed_at"] - r["created_at"]).total_seconds() for r in confirmed)
    first = min(r["created_at"] for r in rows)
    last = max(r["confirmed_at"] for r in confirmed)
    await asyncio.to_thread(settle)  # the events that trail the confirmations count too
    cpu_after = cpu_seconds()
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
    report = await verify("", settled=False)
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/v1", headers=admin) as api_admin:
        for product_id in products:  # off the storefront again, now every order has settled
            (await api_admin.delete(f"/products/{product_id}")).raise_for_status()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "orders": orders,
        "concurrency": concurrency,
        "offered_per_s": rate,
        "confirmed": len(confirmed),
        "posted_s": posted_s,
        "orders_per_s": len(confirmed) / (last - first).total_seconds(),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "mean_ms": statistics.mean(latencies) * 1000,
        "violations": report.violations,
        # From the first POST until every queue is empty: all the work of these orders.
        "cpu_ms_per_order": {k: 1000 * v / len(confirmed) for k, v in sorted(cpu.items())},
    }


def import_100k() -> float:
    token = admin_token(GATEWAY)
    run = uuid.uuid4().hex[:6]
    seconds, result = timed_import(GATEWAY, token, csv_rows(100_000, run, active=True))
    assert result["created"] == 100_000, result
    # Hide them again from the storefront.
    timed_import(GATEWAY, token, csv_rows(100_000, run, active=False))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="new customers per second for the sustained run (default: 85%% of the most "
        "orders/s the closed loop reached); with --only saga, run only that",
    )
    parser.add_argument(
        "--only", choices=["catalog", "saga"], help="run one part, print it, write nothing"
    )
    args = parser.parse_args()
    if args.only:
        set_gateway_rate("1000000r/s")
        try:
            if args.only == "catalog":
                result = catalog(args.duration, args.connections)
            else:
                result = asyncio.run(saga(args.orders, args.concurrency, args.rate))
        finally:
            set_gateway_rate(os.environ.get("GATEWAY_API_RATE", "100r/s"))
        print(json.dumps(result, indent=2, default=str))
        return 0

    set_gateway_rate("1000000r/s")
    try:
        reads = catalog(args.duration, args.connections)
        orders = asyncio.run(saga(args.orders, args.concurrency))
        settle()
        rate = args.rate or int(orders["orders_per_s"] * 0.85)
        steady = asyncio.run(saga(int(rate * args.duration), args.concurrency, rate))
        import_s = import_100k()
    finally:
        set_gateway_rate(os.environ.get("GATEWAY_API_RATE", "100r/s"))
    memory = peak_memory()

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    catalog_ok = reads["rps"] >= 4000 and reads["p99_ms"] <= 30 and reads["errors"] == 0
    saga_ok = steady["orders_per_s"] >= 120 and steady["p95_ms"] <= 300
    most_ok = orders["orders_per_s"] >= 150

    def cpu_figures(run: dict[str, Any]) -> str:
        split = run["cpu_ms_per_order"]
        parts = sorted(split.items(), key=lambda kv: -kv[1])
        return (
            f"{sum(split.values()):.1f} ms ("
            + ", ".join(f"{k.replace('_service', '')} {v:.1f}" for k, v in parts)
            + ")"
        )

    def saga_figures(run: dict[str, Any]) -> str:
        return (
            f"{run['confirmed']}/{run['orders']} CONFIRMED; {run['orders_per_s']:,.1f} orders/s; "
            f"POST to CONFIRMED p50 {run['p50_ms']:,.0f} ms, p95 {run['p95_ms']:,.0f} ms, "
            f"p99 {run['p99_ms']:,.0f} ms; invariants: {len(run['violations'])} violations"
        )

    lines = [
        f"Machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}; commit `{commit}`; the load "
        "generators, nginx, PostgreSQL, Redis, RabbitMQ and the six services all on this machine.",
        "",
        f"Command: `make dev && make bench` (`scripts/bench/run.py --duration {args.duration} "
        f"--connections {args.connections} --orders {args.orders} "
        f"--concurrency {args.concurrency}{f' --rate {args.rate:g}' if args.rate else ''}`)",
        "",
        "| what | figure | target | |",
        "|---|---|---|---|",
        f"| catalog reads through the gateway (wrk, {args.connections} connections, "
        f"{args.duration} s; {reads['mix']}) | {reads['rps']:,.0f} req/s; p50 "
        f"{reads['p50_ms']:.1f} ms, p95 {reads['p95_ms']:.1f} ms, p99 {reads['p99_ms']:.1f} ms; "
        f"{reads['errors']} errors; {reads['gateway_ratio']:.1%} answered by the gateway's "
        f"cache, the rest by the service's (hit ratio {reads['cache_hit_ratio']:.1%}) | "
        f">= 4,000 req/s, p99 <= 30 ms, no errors | {verdict(catalog_ok)} |",
        f"| order saga, the most it does ({args.orders} orders, {args.concurrency} customers at "
        f"a time as fast as they can, pm_card_visa; latency is mostly the backlog they build) | "
        f"{saga_figures(orders)} | >= 150 orders/s | {verdict(most_ok)} |",
        f"| order saga, sustained ({rate:g} new customers/s for {args.duration} s whatever the "
        f"system does, pm_card_visa) | {saga_figures(steady)} | >= 120 orders/s, p95 <= 300 ms |"
        f" {verdict(saga_ok)} |",
        f"| CPU per order, every process (services, nginx, PostgreSQL, RabbitMQ, Redis; from the "
        f"first order until every queue is empty), sustained run | {cpu_figures(steady)} | "
        f"<= 12 ms | {verdict(sum(steady['cpu_ms_per_order'].values()) <= 12)} |",
        f"| bulk import, 100,000 new products (CSV) | {import_s:.1f} s | <= 15 s |"
        f" {verdict(import_s <= 15)} |",
        "| peak memory (VmHWM) | "
        + ", ".join(f"{s.replace('_service', '')} {mb:.0f} MiB" for s, mb in memory.items())
        + " | | |",
    ]
    table = "\n".join(lines)
    print(table)
    record("make bench", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
