"""After each scenario: the sagas settled, then the invariant checks (scripts/verify.py,
stock conservation, every accepted order once and final); what the services logged."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from scripts.chaos.infra import DB_SUFFIX, RUN, query, wait_until
from scripts.chaos.load import FINAL, Chaos, Load
from scripts.verify import verify

SETTLE_S = 180.0  # the saga deadline (120 s) plus the sweeper, plus a margin


IDS = re.compile(r"(pi_sandbox_)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


class LogWatch:
    """Reads what the services logged since it was made: which events they handled."""

    def __init__(self, services: list[str]) -> None:
        self.offsets = {s: self._path(s).stat().st_size for s in services}

    @staticmethod
    def _path(service: str) -> Path:
        return RUN / "logs" / f"{service}.log"

    def handled(self, service: str, event_id: str) -> int:
        """How many times the consumer finished a delivery of this event (acked it)."""
        with self._path(service).open("rb") as file:
            file.seek(self.offsets[service])
            data = file.read()
        count = 0
        for line in data.splitlines():
            if event_id.encode() not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "event_handled" and record.get("event_id") == event_id:
                count += 1
        return count

    def failures(self, ignore: set[str]) -> Counter[str]:
        """Handler failures since: retries and parkings by service, event type and error
        (ids blanked out), as the consumers logged them; not those of the orders in ``ignore``
        (the synthetic ones, whose failures are the point)."""
        found: Counter[str] = Counter()
        for service, offset in self.offsets.items():
            with self._path(service).open("rb") as file:
                file.seek(offset)
                data = file.read()
            for line in data.splitlines():
                if b"event_retry_scheduled" not in line and b"event_parked" not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("correlation_id") in ignore:
                    continue
                what = "parked" if record.get("event") == "event_parked" else "retried"
                error = IDS.sub("<id>", str(record.get("error", "")))[:90]
                found[f"{service} {what} {record.get('event_type')} ({error})"] += 1
        return found


@dataclass
class Result:
    key: str
    title: str
    placed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    faults: str = ""
    fault_count: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def settle_and_check(chaos: Chaos, load: Load, result: Result) -> None:
    """After the load: wait until no order is PENDING, then every check."""

    async def none_pending() -> bool:
        rows = await query("orders", "SELECT count(*) FROM orders WHERE status = 'PENDING'")
        return int(rows[0][0]) == 0

    started = time.monotonic()
    if not await wait_until(none_pending, SETTLE_S, 0.25):
        result.violations.append(f"orders still PENDING {SETTLE_S:.0f} s after the load stopped")
    result.notes.append(f"settled {time.monotonic() - started:.1f} s after the load stopped")

    # verify.py: compensations (release, void, capture) may still be in flight for a moment.
    report = None
    deadline = time.monotonic() + 30
    while True:
        try:
            report = await verify(DB_SUFFIX, settled=True)
        except (OSError, asyncpg.PostgresError) as exc:
            report = None
            new = [f"verify failed: {exc!r}"]
        else:
            new = [v for v in report.violations if v not in chaos.known]
        if not new or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    result.violations.extend(new)
    if report is not None:
        carried = [v for v in report.violations if v in chaos.known]
        if carried:
            result.notes.append(f"{len(carried)} violation(s) of earlier scenarios still there")
        chaos.known.update(report.violations)

    # Stock conservation: initial stock = available + reserved + sold, for every product.
    rows = await query(
        "products",
        "SELECT id, sku, available_quantity, reserved_quantity, sold_quantity FROM products",
    )
    for row in rows:
        initial = chaos.initial.get(str(row["id"]))
        total = row["available_quantity"] + row["reserved_quantity"] + row["sold_quantity"]
        if initial is not None and total != initial:
            message = (
                f"product {row['sku']}: initial stock {initial} != available "
                f"{row['available_quantity']} + reserved {row['reserved_quantity']} + sold "
                f"{row['sold_quantity']}"
            )
            if message not in chaos.known:
                result.violations.append(message)
                chaos.known.add(message)

    # Every 202 is one order, by its key, in a final state, reached without the deadline.
    keys = list(load.accepted) + load.abandoned
    rows = await query(
        "orders",
        "SELECT idempotency_key, id, status, cancel_code FROM orders"
        " WHERE idempotency_key = ANY($1::text[])",
        keys,
    )
    by_key: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_key.setdefault(row["idempotency_key"], []).append(row)
    for key, order_id in load.accepted.items():
        found = by_key.get(key, [])
        if len(found) != 1:
            result.violations.append(f"key {key} (202 for order {order_id}): {len(found)} orders")
            continue
        order = found[0]
        if str(order["id"]) != order_id:
            result.violations.append(f"key {key}: 202 named {order_id}, stored {order['id']}")
        if order["status"] not in FINAL:
            result.violations.append(f"order {order_id} ended {order['status']}")
        if order["cancel_code"] == "deadline":
            result.violations.append(f"order {order_id} ended only by the saga deadline")
        result.statuses[order["status"]] += 1
        if order["status"] == "CANCELLED":
            result.reasons[order["cancel_code"]] += 1
    for key in load.abandoned:
        if len(by_key.get(key, [])) > 1:
            result.violations.append(f"key {key} (never answered 202): {len(by_key[key])} orders")
        elif by_key.get(key):
            result.notes.append(f"key {key} was never answered 202, but its order exists")
    result.violations.extend(load.mismatches)
