"""`make bench-scale`: the catalog at a million products, through the gateway.

On a stack of its own (databases ``*_scale``, vhost ``ecommerce_scale``, Redis db 12, gateway
on :38080, so the dev stack and its catalog are left alone): imports 1,000,000 generated
products (names and descriptions from a shop's vocabulary, 12 categories, prices from 1 to
2,000) as one CSV through the gateway, then times, one request at a time and each with its
own query (so neither the gateway's cache nor the service's can answer it):

- one-word searches (some words are on a fifth of the catalog), two-word searches;
- a category with a price range sorted by price, and the newest of a category;
- the last page the API serves (the 1,000th product) of the newest list;
- product pages.

and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each query shape as the service runs it. The
figures go into docs/benchmarks.md. The stack and its databases are removed at the end.

    .venv/bin/python scripts/bench/scale.py [--products 1000000] [--requests 100] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect  # noqa: E402

from product_service.domain import search_query  # noqa: E402
from product_service.service import search_statements  # noqa: E402
from scripts.bench_import import record, timed_import  # noqa: E402
from scripts.stack import admin_token, drop_databases, fresh_vhost  # noqa: E402

NAME, GATEWAY_PORT, PORT_OFFSET, DB_SUFFIX = "scale", 38080, 30000, "_scale"
VHOST = "ecommerce_scale"
GATEWAY = f"http://127.0.0.1:{GATEWAY_PORT}"
API = f"{GATEWAY}/api/v1"
PG = "postgresql://postgres@127.0.0.1:5432"
STACK = [
    sys.executable, str(ROOT / "scripts" / "stack.py"), "--name", NAME,
    "--gateway-port", str(GATEWAY_PORT), "--port-offset", str(PORT_OFFSET),
    "--db-suffix", DB_SUFFIX, "--amqp-url", f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
]  # fmt: skip
STACK_ENV = {
    "JWT_SECRET": secrets.token_urlsafe(48),  # this run's own
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "GATEWAY_API_RATE": "100000r/s",
    "PRODUCT_IMPORT_MAX_BYTES": str(400 * 2**20),
}

CATEGORIES = {
    "kitchen": ["kettle", "mug", "knife", "pan", "teapot", "bowl", "grater", "whisk"],
    "home": ["lamp", "cushion", "rug", "vase", "mirror", "clock", "blanket", "shelf"],
    "garden": ["planter", "trowel", "hose", "bench", "lantern", "birdhouse", "rake", "pruner"],
    "books": ["novel", "atlas", "cookbook", "journal", "anthology", "guide", "memoir", "almanac"],
    "toys": ["puzzle", "kite", "robot", "train", "doll", "blocks", "yo-yo", "marbles"],
    "sports": ["racket", "ball", "helmet", "glove", "bottle", "mat", "skipping-rope", "net"],
    "outdoors": ["tent", "backpack", "compass", "hammock", "stove", "torch", "sleeping-bag"],
    "electronics": ["speaker", "charger", "headphones", "radio", "keyboard", "mouse", "cable"],
    "beauty": ["brush", "soap", "comb", "balm", "serum", "towel", "diffuser", "razor"],
    "clothing": ["scarf", "jacket", "sweater", "beanie", "apron", "raincoat", "socks", "belt"],
    "office": ["notebook", "pen", "stapler", "folder", "desk-tidy", "planner", "ruler"],
    "pets": ["collar", "leash", "feeder", "blanket", "scratcher", "toy", "carrier", "bed"],
}
ADJECTIVES = (
    "classic modern rustic compact sturdy elegant handmade vintage minimalist colourful "
    "foldable portable cosy bright quiet heavy-duty lightweight premium simple durable "
    "soft smooth waterproof insulated rechargeable nordic coastal alpine urban retro"
).split()
MATERIALS = (
    "walnut oak bamboo ceramic stoneware steel copper brass linen wool cotton leather "
    "glass marble cork canvas"
).split()
COLOURS = "sage charcoal ivory navy terracotta mustard teal plum sand slate".split()
# Phrases of descriptions; the first words are on many products (a fifth of the catalog).
PHRASES = [
    "made for everyday use",
    "a thoughtful gift",
    "easy to clean",
    "built to last for years",
    "designed in a small studio",
    "packed in recycled cardboard",
    "finished by hand",
    "safe for children",
    "ideal for small flats",
    "loved by our customers",
    "with a two year warranty",
    "shipped within two days",
]


def product_rows(count: int, run: str, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    slugs = list(CATEGORIES)
    lines = ["sku,name,description,category,price,currency,quantity"]
    for n in range(count):
        category = slugs[n % len(slugs)]
        noun = rng.choice(CATEGORIES[category])
        adjective, material, colour = (rng.choice(w) for w in (ADJECTIVES, MATERIALS, COLOURS))
        phrases = rng.sample(PHRASES, 2)
        description = (
            f"A {adjective} {colour} {noun} of {material}, {phrases[0]} and {phrases[1]}. "
            f"Model {run}{n:07d}."
        )
        price = Decimal(rng.lognormvariate(3.3, 0.9)).quantize(Decimal("0.01"))
        price = min(max(price, Decimal("1.00")), Decimal("2000.00"))
        name = f"{adjective.capitalize()} {material} {noun}".replace("-", " ")
        lines.append(
            f'SCALE-{run}-{n:07d},{name},"{description}",{category},{price},EUR,'
            f"{rng.randint(0, 80)}"
        )
    return ("\n".join(lines) + "\n").encode()


def stack(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_DATABASE_URL", "_SERVICE_URL"))}
    subprocess.run([*STACK[:2], command, *STACK[2:]], check=True, env=env | STACK_ENV)


def fresh_stack() -> None:
    stack("stop")
    asyncio.run(drop_databases(DB_SUFFIX))
    fresh_vhost(VHOST)
    stack("start")


def timed(client: httpx.Client, requests: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    latencies, totals, capped = [], [], 0
    for path, params in requests:
        started = time.perf_counter()
        response = client.get(path, params=params)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        if "total" in body:
            totals.append(body["total"])
            capped += bool(body.get("totalCapped"))
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
        "matches": f"{min(totals):,}-{max(totals):,} ({capped} capped)" if totals else "",
    }


def workloads(requests: int, ids: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each request its own query string: a page size that differs (20-99) where the words
    repeat, so every request misses both caches."""
    rng = random.Random(11)
    words = sorted({w for nouns in CATEGORIES.values() for w in nouns} | set(ADJECTIVES))
    words += [p.split()[-1] for p in PHRASES]
    common = ["everyday", "gift", "clean", "years", "studio", "recycled", "hand", "children"]

    def size(n: int) -> int:
        return 20 + n % 80

    one = [("/products", {"search": w, "pageSize": size(n)}) for n, w in enumerate(words)]
    rng.shuffle(one)
    return {
        "search, one word (distinct words, any sort: relevance)": one[:requests],
        "search, one word on a fifth of the catalog (relevance)": [
            ("/products", {"search": common[n % len(common)], "pageSize": size(n)})
            for n in range(min(requests, 80))
        ],
        "search, two words (relevance)": [
            (
                "/products",
                {
                    "search": f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)}",
                    "pageSize": size(n),
                },
            )
            for n in range(requests)
        ],
        "category, price range, sorted by price": [
            (
                "/products",
                {
                    "category": rng.choice(list(CATEGORIES)),
                    "minPrice": lo,
                    "maxPrice": lo + 50,
                    "sort": "price",
                    "pageSize": size(n),
                },
            )
            for n, lo in enumerate(rng.randint(5, 200) for _ in range(requests))
        ],
        "category, newest first": [
            ("/products", {"category": rng.choice(list(CATEGORIES)), "pageSize": size(n)})
            for n in range(requests)
        ],
        "newest list, the last page served (page x pageSize = 1,000)": [
            ("/products", {"page": 1_000 // s, "pageSize": s})
            for s in (20, 25, 40, 50, 80, 100, 16, 10, 8, 5)
        ],
        "product page": [(f"/products/{i}", {}) for i in ids[:requests]],
    }


async def explain(queries: dict[str, dict[str, Any]]) -> str:
    conn = await asyncpg.connect(f"{PG}/products{DB_SUFFIX}")
    dialect = asyncpg_dialect()
    out = []
    try:
        for what, params in queries.items():
            query = search_query(**params)
            count, page = search_statements(query)
            for label, statement in (("count", count), ("page", page)):
                compiled = statement.compile(
                    dialect=dialect, compile_kwargs={"render_postcompile": True}
                )
                values = [compiled.params[name] for name in compiled.positiontup or []]
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", *values)
                plan = "\n".join(r[0] for r in rows)
                out.append(f"#### {what}: {label}\n\n```\n{plan}\n```\n")
    finally:
        await conn.close()
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    fresh_stack()
    try:
        token = admin_token(API, "scale-admin@example.com", "scale-admin-password", _users_env())
        body = product_rows(args.products, "S")
        import_s, result = timed_import(GATEWAY, token, body)
        assert result["created"] == args.products, result
        print(f"imported {args.products:,} products in {import_s:.1f} s", flush=True)
        asyncio.run(_analyze())
        with httpx.Client(base_url=API, timeout=60) as client:
            newest = client.get("/products", params={"pageSize": 100}).json()["items"]
            ids = [p["id"] for p in newest]
            ids += [
                p["id"]
                for c in CATEGORIES
                for p in client.get("/products", params={"category": c, "sort": "price"}).json()[
                    "items"
                ]
            ]
            figures = {
                what: timed(client, reqs) for what, reqs in workloads(args.requests, ids).items()
            }
        plans = asyncio.run(
            explain(
                {
                    "one word on a fifth of the catalog": _q(search="everyday"),
                    "one word": _q(search="teapot"),
                    "two words": _q(search="rustic walnut"),
                    "category, price range, by price": _q(
                        category="kitchen",
                        min_price=Decimal(20),
                        max_price=Decimal(70),
                        sort="price",
                    ),
                    "category, newest": _q(category="garden"),
                    "newest, last page": _q(page=50),
                }
            )
        )
    finally:
        if not args.keep:
            stack("stop")
            asyncio.run(drop_databases(DB_SUFFIX))
    lines = [
        f"Machine: {os.cpu_count()} cores; command: `make bench-scale` "
        f"(`scripts/bench/scale.py --products {args.products} --requests {args.requests}`), "
        f"commit `{_commit()}`. One request at a time through the gateway, each with a query "
        "string of its own (uncached by the gateway and by the service).",
        "",
        f"Import of {args.products:,} products (one CSV, {len(body) / 2**20:.0f} MiB, through the "
        f"gateway): **{import_s:.1f} s** ({args.products / import_s:,.0f} rows/s); target <= 60 s.",
        "",
        "| query | requests | p50 | p95 | max | matches |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {what} | {f['requests']} | {f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms | "
        f"{f['max_ms']:.1f} ms | {f['matches']} |"
        for what, f in figures.items()
    ]
    lines += ["", "Target: search and category listing p95 <= 50 ms.", "", "### Plans", "", plans]
    table = "\n".join(lines)
    print(table)
    record("make bench-scale", table)
    return 0


def _q(**kwargs: Any) -> dict[str, Any]:
    base = {"search": None, "category": None, "min_price": None, "max_price": None}
    return base | {"sort": None, "page": 1, "page_size": 20} | kwargs


def _users_env() -> dict[str, str]:
    return dict(
        os.environ,
        **STACK_ENV,
        USER_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/users{DB_SUFFIX}",
    )


async def _analyze() -> None:
    """What autovacuum would do after a bulk load: fresh statistics for the planner."""
    conn = await asyncpg.connect(f"{PG}/products{DB_SUFFIX}")
    try:
        await conn.execute("VACUUM ANALYZE products")
    finally:
        await conn.close()


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
