"""The saga's invariants, checked against each service's database (`make verify`).

- every order ends CONFIRMED, SHIPPED or CANCELLED: none is PENDING past its deadline
  (with --settled: none is PENDING at all);
- a CONFIRMED order holds its stock and an authorised payment of its total;
- a SHIPPED order has exactly one captured payment of its total, and its stock is sold;
- a CANCELLED order has no captured payment, no authorisation left, and no held stock;
- for every product, what is reserved and sold equals what the orders hold, nothing is
  negative (so initial stock = available + reserved + sold, as changed only by admins);
- no notification is sent twice (per event, and per order, channel and template).

    .venv/bin/python scripts/verify.py [--db-suffix _e2e] [--settled]

Run it on a quiet system: a saga still in flight can look inconsistent for a moment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

PG = os.environ.get("VERIFY_PG", "postgresql://postgres@127.0.0.1:5432")


@dataclass
class Report:
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.violations.append(message)


async def _fetch(database: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(f"{PG}/{database}")
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def verify(db_suffix: str = "", settled: bool = False) -> Report:
    report = Report()
    orders, payments, reservations, products, deliveries = await asyncio.gather(
        _fetch(
            f"orders{db_suffix}",
            "SELECT id, status, total_amount, currency, deadline_at < now() AS overdue FROM orders",
        ),
        _fetch(f"payments{db_suffix}", "SELECT order_id, status, amount, currency FROM payments"),
        _fetch(f"products{db_suffix}", "SELECT order_id, status, lines FROM stock_reservations"),
        _fetch(
            f"products{db_suffix}",
            "SELECT id, sku, available_quantity, reserved_quantity, sold_quantity FROM products",
        ),
        _fetch(
            f"notifications{db_suffix}",
            "SELECT event_id, reference, channel, template FROM deliveries",
        ),
    )
    payment_of = {p["order_id"]: p for p in payments}
    stock_of = {r["order_id"]: r for r in reservations}

    for order in orders:
        report.counts[f"orders {order['status']}"] += 1
        oid, status = order["id"], order["status"]
        payment, stock = payment_of.get(oid), stock_of.get(oid)
        if status == "PENDING":
            if settled or order["overdue"]:
                report.fail(f"order {oid} is still PENDING")
            continue
        if status == "CONFIRMED":
            _expect_payment(report, order, payment, "authorised")
            if stock is None or stock["status"] != "reserved":
                report.fail(f"CONFIRMED order {oid} holds no stock ({_s(stock)})")
        elif status == "SHIPPED":
            _expect_payment(report, order, payment, "captured")
            if stock is None or stock["status"] != "sold":
                report.fail(f"SHIPPED order {oid}: stock is {_s(stock)}, not sold")
        elif status == "CANCELLED":
            if payment is not None and payment["status"] in ("captured", "authorised"):
                report.fail(f"CANCELLED order {oid} has a payment {payment['status']}")
            if stock is not None and stock["status"] in ("reserved", "sold"):
                report.fail(f"CANCELLED order {oid} still holds stock ({stock['status']})")
        else:
            report.fail(f"order {oid} has an unknown status {status}")

    held: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    for reservation in reservations:
        target = {"reserved": held, "sold": sold}.get(reservation["status"])
        if target is None:
            continue
        for line in _lines(reservation["lines"]):
            target[str(line["productId"])] += int(line["quantity"])
    for product in products:
        report.counts["products"] += 1
        pid = str(product["id"])
        for column in ("available_quantity", "reserved_quantity", "sold_quantity"):
            if product[column] < 0:
                report.fail(f"product {product['sku']}: {column} is {product[column]}")
        if product["reserved_quantity"] != held[pid]:
            report.fail(
                f"product {product['sku']}: reserved {product['reserved_quantity']}, "
                f"orders hold {held[pid]}"
            )
        if product["sold_quantity"] != sold[pid]:
            report.fail(
                f"product {product['sku']}: sold {product['sold_quantity']}, "
                f"orders sold {sold[pid]}"
            )

    per_event = Counter((d["event_id"], d["channel"], d["template"]) for d in deliveries)
    per_order = Counter(
        (d["reference"], d["channel"], d["template"]) for d in deliveries if d["reference"]
    )
    report.counts["notifications"] = len(deliveries)
    for key, count in (per_event + per_order).items():
        if count > 1:
            report.fail(f"notification {key} sent {count} times")
    report.counts["payments"] = len([p for p in payments if p["status"] != "cancelled"])
    return report


def _expect_payment(report: Report, order: Any, payment: Any, status: str) -> None:
    oid = order["id"]
    if payment is None or payment["status"] != status:
        report.fail(f"{order['status']} order {oid}: payment is {_s(payment)}, not {status}")
        return
    if Decimal(payment["amount"]) != Decimal(order["total_amount"]):
        report.fail(f"order {oid}: payment {payment['amount']} != total {order['total_amount']}")
    if payment["currency"] != order["currency"]:
        report.fail(f"order {oid}: payment currency {payment['currency']} != {order['currency']}")


def _s(row: Any) -> str:
    return "missing" if row is None else str(row["status"])


def _lines(value: Any) -> list[dict[str, Any]]:
    return list(json.loads(value) if isinstance(value, str) else value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db-suffix", default="")
    parser.add_argument("--settled", action="store_true", help="no order may be PENDING at all")
    args = parser.parse_args()
    report = asyncio.run(verify(args.db_suffix, args.settled))
    print("checked: " + ", ".join(f"{n} {what}" for what, n in sorted(report.counts.items())))
    for violation in report.violations:
        print(f"VIOLATION: {violation}")
    print("invariants hold" if not report.violations else f"{len(report.violations)} violation(s)")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
