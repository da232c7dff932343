"""The report: what each scenario shows, what a failure in the logs means, the table and
summary lines, and docs/reliability.md."""

from __future__ import annotations

import os
import platform
import subprocess

from scripts.chaos.checks import Result
from scripts.chaos.infra import MAX_ATTEMPTS, ROOT

FOUND_HEADING = "## What it found"


KILLED = (
    "The service is killed with SIGKILL mid-load (no ack, commit or publish gets a chance) and "
    "started again with scripts/stack.py, which runs the migrations first, so it stays down for "
    "several seconds. Its unacked deliveries are redelivered and deduplicated (by the inbox; "
    "in cart_service by its Lua script), and what it committed but had not published leaves "
    "its outbox after the restart. "
)
ABOUT = {
    "dup": (
        "An OrderCreated for a shelf of 10 is published twice with the same id, an "
        "OrderCancelled before its own OrderCreated, and an OrderCancelled twice, straight to "
        "the exchange. The shelf must show 8 available and 2 reserved after the duplicate, stay "
        "so after the late OrderCreated (the tombstone wins) and be back to 10 after the "
        "duplicated cancel; payments one authorisation, then one void, and nothing for the "
        "order cancelled first; one e-mail per event. The inbox and the per-order rows make "
        "each effect happen once, whatever arrives twice or late."
    ),
    "kill-cart": KILLED
    + (
        "Without cart_service the gateway answers 503 for carts and orders cannot be priced, "
        "so customers retry POST /orders with the same key; the OrderCreated events wait in "
        "its queue and the ordered lines leave the carts after the restart. Nothing of the "
        "saga depends on it."
    ),
    "kill-order": KILLED
    + (
        "POST /orders answers 503 (or loses its answer) while order_service is down; the "
        "customers' retries with the same key get the order that was stored, never a second "
        "one. StockReserved and PaymentProcessed wait in its queue and confirm or cancel the "
        "orders after the restart."
    ),
    "kill-payment": KILLED
    + (
        "Orders stay PENDING with their stock reserved while payment_service is down and are "
        "authorised after the restart; orders confirmed before the kill are shipped or "
        "cancelled a few seconds later, so captures and voids of authorisations made before "
        "the restart are asked of the new process."
    ),
    "kill-product": KILLED
    + (
        "Carts answer from the last product data they saw (stale), orders cannot be priced "
        "(503, retried with the same key), and reservations, releases and sales wait in "
        "product_service's queue until it is back."
    ),
    "kill-notification": KILLED
    + (
        "Nothing in the saga waits for notifications: orders go on confirming while it is "
        "down, and the e-mails are sent after the restart, none twice (verify.py)."
    ),
    "connections": (
        "The broker closes every AMQP connection of the chaos vhost. The services' robust "
        "connections reconnect within seconds (new connections replace all the old ones) and "
        "restore their channels and consumers; deliveries whose ack was lost with the "
        "connection are redelivered and deduplicated."
    ),
    "broker-restart": (
        "RabbitMQ itself is stopped (`rabbitmqctl stop_app`) and started under load. Orders "
        "are still accepted while it is down, since POST /orders only writes the order and its "
        "outbox row; the relays publish the backlog once the services have reconnected, and the "
        "durable queues keep the persistent messages that were queued."
    ),
    "postgres-restart": (
        "PostgreSQL restarts, cutting every connection of every service at once. Requests in "
        "flight fail and are retried by the customers with the same key, failing handlers are "
        "retried through the retry queues, the pools reconnect (pre-ping) and the relays listen "
        "again."
    ),
    "redis-down": (
        "Redis is shut down for 10 s and started again empty (no persistence locally). Carts "
        "answer 503, so orders cannot be priced and customers retry; cart_service's "
        "OrderCreated handler fails and is retried until Redis is back; the catalog reads from "
        "PostgreSQL. No saga state lives in Redis, so none is lost."
    ),
    "poison": (
        "A malformed OrderCreated (not even JSON) is parked at its first attempt by each of its "
        "four consumers, since no retry can fix it, and the orders placed after it complete. "
        "The well-formed StockReserved for an unknown order published at the start of the run "
        "fails in order_service's handler at every attempt and is parked after exactly "
        f"MAX_DELIVERY_ATTEMPTS ({MAX_ATTEMPTS}) attempts, 127 s of backoff later."
    ),
}
# What a failure seen in the logs means, when a scenario shows it (see LogWatch.failures).
FINDINGS = {
    "InvalidPaymentState: cannot capture": (
        "payment_service's sandbox provider (SandboxPaymentProvider in "
        "payment_service/providers.py) keeps its PaymentIntents in process memory. After the "
        "restart it has forgotten every authorisation made before it, so capturing (OrderShipped)"
        " or voiding (OrderCancelled) one raises InvalidPaymentState ('it is None') at every "
        f"attempt; after {MAX_ATTEMPTS} attempts the event is parked in payment_service.parked "
        "and the payment stays authorised under a SHIPPED or CANCELLED order. Stripe keeps its "
        "PaymentIntents, so this is the sandbox's flaw, but the sandbox is what make dev and the "
        "tests run."
    ),
}


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | orders placed | confirmed | cancelled | shipped | client retries "
        "| faults injected | violations | duration |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.title} | {r.placed} | {r.statuses['CONFIRMED']} | {r.statuses['CANCELLED']} "
            f"| {r.statuses['SHIPPED']} | {r.retries} | {r.fault_count}: {r.faults} "
            f"| {len(r.violations)} | {r.seconds:.0f} s |"
        )
    return "\n".join(lines)


def summary_line(r: Result) -> str:
    reasons = ", ".join(f"{n} {c}" for c, n in sorted(r.reasons.items()))
    return (
        f"{r.title}: {r.placed} orders placed; {r.statuses['CONFIRMED']} confirmed, "
        f"{r.statuses['CANCELLED']} cancelled ({reasons or 'none'}), {r.statuses['SHIPPED']} "
        f"shipped; faults: {r.fault_count} ({r.faults}); violations: {len(r.violations)}; "
        f"{r.seconds:.1f} s"
    )


def write_report(
    results: list[Result], command: str, total_s: float, workers: int, replicas: int = 1
) -> None:
    """docs/reliability.md; with replicas, docs/reliability-replicas.md."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    violations = sum(len(r.violations) for r in results)
    several = f" with {replicas} replicas of every service" if replicas > 1 else ""
    out = [
        f"# Reliability{several}",
        "",
        f"What `make chaos{f' REPLICAS={replicas}' if replicas > 1 else ''}` (`scripts/chaos/`) "
        "shows: the order saga under faults, with its "
        "invariants checked after each one. It runs a stack of its own (gateway :28080, "
        "databases `*_chaos`, vhost `ecommerce_chaos`, Redis db 13) with "
        "`ORDER_SAGA_DEADLINE_S=120` and `MAX_DELIVERY_ATTEMPTS=8`"
        + (
            f", {replicas} processes of every service (competing consumers on each queue, "
            "relays sharing each outbox with SKIP LOCKED, the gateway spreading requests; a "
            "kill -9 kills the first). "
            if replicas > 1
            else ". "
        )
        + "Each scenario runs under a "
        f"steady load of {workers} customers, each filling a cart and placing an order with an "
        "`Idempotency-Key` (sent again, with the same key, on a 5xx or a broken connection; 1 in "
        "10 sent twice on purpose), 15% of them with `pm_card_chargeDeclined`, a third racing for "
        "a product with 12 in stock; 1 to 5 s after confirmation an admin ships a quarter of the "
        "confirmed orders and their owners cancel some more. Then the load stops, the sagas "
        "settle (no order PENDING) and the checks run: `scripts/verify.py` (payments, "
        "reservations, stock counters, no notification twice), initial stock = available + "
        "reserved + sold for every product, and every order answered 202 exists once (by its "
        "key) and ended CONFIRMED, SHIPPED or CANCELLED without needing the saga deadline.",
        "",
        f"Machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}; commit `{commit}`; the load "
        "generator, nginx, PostgreSQL, Redis, RabbitMQ and the six services all on this machine.",
        "",
        f"Command: `make chaos` (`bash scripts/bootstrap.sh && {command}`); "
        f"{total_s / 60:.1f} minutes in all.",
        "",
        table(results),
        "",
        f"Violations in all: {violations} (a violation is counted in the scenario that first "
        "shows it). Client retries: POST /orders sent again with the same key after a 5xx or no "
        "answer. Logs of the run: `.run/chaos/logs/`.",
        "",
        "## What each scenario shows",
    ]
    for r in results:
        out += ["", f"**{r.title}** ({r.faults}). {ABOUT[r.key]}", ""]
        reasons = ", ".join(f"{n} {c}" for c, n in sorted(r.reasons.items()))
        out.append(f"- cancelled: {reasons or 'none'}; " + "; ".join(r.notes) + ".")
        for violation in r.violations[:10]:
            out.append(f"- VIOLATION: {violation}")
        if len(r.violations) > 10:
            out.append(f"- ... and {len(r.violations) - 10} more violation(s)")
        for signature, finding in FINDINGS.items():
            if r.violations and any(signature in note for note in r.notes):
                out.append(f"- Why: {finding}")
    doc = ROOT / "docs" / ("reliability-replicas.md" if replicas > 1 else "reliability.md")
    # What the runs found is written by hand, under its own heading: kept from run to run.
    found = doc.read_text().partition(FOUND_HEADING)[2] if doc.exists() else ""
    text = "\n".join(out) + "\n"
    if found:
        text += "\n" + FOUND_HEADING + found
    doc.write_text(text)
