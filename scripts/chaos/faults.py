"""The faults: kill -9 of a service, the broker's connections closed, RabbitMQ and
PostgreSQL restarted, Redis down, duplicate and out-of-order events, poison messages; and
publishing events straight to the exchange."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from scripts.chaos.checks import LogWatch
from scripts.chaos.infra import (
    AMQP_URL,
    EXCHANGE,
    MAX_ATTEMPTS,
    RUN,
    VHOST,
    all_ready,
    pg_version,
    query,
    rabbitmqctl,
    redis_up,
    sh,
    stack,
    start_redis,
    vhost_connections,
    wait_until,
)
from scripts.chaos.load import Chaos, Load, new_product
from scripts.stack import alive
from shared_events.bus import EventBus
from shared_events.events import Event, OrderCancelled, OrderCreated, OrderLine
from shared_events.parking import ParkedMessage, list_parked

# The services that consume OrderCreated, where a malformed one must end parked.
ORDER_CREATED_CONSUMERS = [
    "product_service",
    "payment_service",
    "cart_service",
    "notification_service",
]
REDIS_DOWN_S = 10.0
BROKER_DOWN_S = 5.0


# --- publishing events straight to the exchange -------------------------------------------


async def publish(messages: list[tuple[bytes, str, str, str, str | None]]) -> None:
    """Publish (body, type, message id, routing key, correlation id) through the services'
    own EventBus: persistent JSON with confirms, to ecommerce.events in our vhost."""
    bus = EventBus(AMQP_URL, EXCHANGE, "chaos")
    await bus.connect()
    try:
        for body, event_type, message_id, routing_key, correlation_id in messages:
            await bus.publish(
                body=body,
                event_type=event_type,
                message_id=message_id,
                routing_key=routing_key,
                correlation_id=correlation_id,
                headers={"x-request-id": f"chaos-{uuid.uuid4().hex[:16]}"},
            )
    finally:
        await bus.close()


def as_message(event: Event, order_id: uuid.UUID) -> tuple[bytes, str, str, str, str | None]:
    return (event.to_json(), event.event_type(), str(event.id), event.routing_key, str(order_id))


async def parked(service: str, message_id: str) -> list[ParkedMessage]:
    return [m for m in await list_parked(AMQP_URL, service, 1000) if m.message_id == message_id]


@dataclass
class Fault:
    summary: str
    count: int
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def kill(chaos: Chaos, load: Load, service: str) -> Fault:
    pid_file = RUN / f"{service}.pid"
    pid = int(pid_file.read_text())
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    async def dead() -> bool:
        return not alive(pid)  # a zombie counts as dead, as stack.py sees it

    if not await wait_until(dead, 15, 0.1):
        raise RuntimeError(f"{service} (pid {pid}) still alive 15 s after SIGKILL")
    gone = time.monotonic() - started
    await asyncio.to_thread(stack, "start")  # migrations, then the service, then /ready
    down = time.monotonic() - started
    new_pid = int(pid_file.read_text())
    return Fault(
        f"kill -9 {service} (dead in {gone:.1f} s), ready again after {down:.1f} s",
        1,
        [] if new_pid != pid else [f"{service} was not restarted (pid {pid})"],
    )


async def close_connections(chaos: Chaos, load: Load) -> Fault:
    before = await asyncio.to_thread(vhost_connections)
    started = time.monotonic()
    await asyncio.to_thread(rabbitmqctl, "close_all_connections", "-p", VHOST, "chaos")

    async def back() -> bool:
        now = await asyncio.to_thread(vhost_connections)
        return not now & before and len(now) >= len(before) and await all_ready(chaos.api)

    violations = []
    if not await wait_until(back, 60, 0.2):
        violations.append(f"the services did not reconnect within 60 s ({len(before)} before)")
    took = time.monotonic() - started
    return Fault(
        f"closed {len(before)} connections, all replaced and ready in {took:.1f} s",
        len(before),
        violations,
    )


async def broker_restart(chaos: Chaos, load: Load) -> Fault:
    started = time.monotonic()
    mark = len(load.accepted)
    try:
        await asyncio.to_thread(sh, "rabbitmqctl", "stop_app")
        await asyncio.sleep(BROKER_DOWN_S)  # the outage itself: orders keep being accepted
        during = len(load.accepted) - mark
    finally:
        await asyncio.to_thread(sh, "rabbitmqctl", "start_app")
        await asyncio.to_thread(sh, "rabbitmqctl", "await_startup", "--timeout", "60")
    down = time.monotonic() - started
    violations = []
    if not await wait_until(lambda: all_ready(chaos.api), 60, 0.5):
        violations.append("the services were not ready within 60 s of the broker's start")
    took = time.monotonic() - started
    return Fault(
        f"stop_app/start_app, down {down:.1f} s, all ready after {took:.1f} s",
        1,
        violations,
        [f"{during} orders accepted while the broker was down (they waited in the outbox)"],
    )


async def postgres_restart(chaos: Chaos, load: Load) -> Fault:
    version = pg_version()
    started = time.monotonic()
    try:
        await asyncio.to_thread(
            sh, "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"
        )
    finally:

        async def accepting() -> bool:
            ready = sh("pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", check=False)
            return ready.returncode == 0

        if not await wait_until(accepting, 30, 0.2):
            sh("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start", check=False)
    down = time.monotonic() - started
    violations = []
    if not await wait_until(lambda: all_ready(chaos.api), 60, 0.5):
        violations.append("the services were not ready within 60 s of PostgreSQL's restart")
    took = time.monotonic() - started
    return Fault(
        f"restart {version}/main in {down:.1f} s, all ready after {took:.1f} s", 1, violations
    )


async def redis_down(chaos: Chaos, load: Load) -> Fault:
    started = time.monotonic()
    try:
        await asyncio.to_thread(
            sh, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave", check=False
        )

        async def stopped() -> bool:
            return not await asyncio.to_thread(redis_up)

        await wait_until(stopped, 10, 0.1)
        await asyncio.sleep(REDIS_DOWN_S)  # the outage itself
    finally:
        await asyncio.to_thread(start_redis)

        async def up() -> bool:
            return await asyncio.to_thread(redis_up)

        await wait_until(up, 10, 0.1)
    down = time.monotonic() - started
    violations = []
    if not await wait_until(lambda: all_ready(chaos.api), 60, 0.5):
        violations.append("the services were not ready within 60 s of Redis' start")
    return Fault(f"shutdown nosave, down {down:.1f} s", 1, violations)


async def duplicates(chaos: Chaos, load: Load) -> Fault:
    """The same OrderCreated twice; an OrderCancelled before its OrderCreated; the same
    OrderCancelled twice. Stock and payments must change exactly once, or not at all."""
    shelf = await new_product(chaos, "Chaos Duplicate Shelf", stock=10, price="7.50")
    violations: list[str] = []
    watch = LogWatch(["product_service", "payment_service", "cart_service", "notification_service"])
    stock_payment = ["product_service", "payment_service"]

    async def handled(event: Event, services: list[str], times: int) -> None:
        async def done() -> bool:
            return all(watch.handled(s, str(event.id)) >= times for s in services)

        if not await wait_until(done, 60, 0.2):
            counts = {s: watch.handled(s, str(event.id)) for s in services}
            violations.append(f"{event.event_type()} {event.id} not handled {times}x: {counts}")

    async def shelf_stock() -> tuple[int, int, int]:
        [row] = await query(
            "products",
            "SELECT available_quantity, reserved_quantity, sold_quantity FROM products"
            " WHERE id = $1",
            uuid.UUID(shelf.id),
        )
        return row[0], row[1], row[2]

    async def payments_of(order_id: uuid.UUID) -> list[tuple[str, Any, Any]]:
        rows = await query(
            "payments",
            "SELECT status, amount, provider_payment_id FROM payments WHERE order_id = $1",
            order_id,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def reservation(order_id: uuid.UUID) -> str | None:
        rows = await query(
            "products", "SELECT status FROM stock_reservations WHERE order_id = $1", order_id
        )
        return str(rows[0][0]) if rows else None

    def expect(what: str, got: Any, wanted: Any) -> None:
        if got != wanted:
            violations.append(f"{what}: {got!r}, expected {wanted!r}")

    def created(order_id: uuid.UUID, quantity: int) -> OrderCreated:
        user = uuid.uuid4()
        return OrderCreated(
            order_id=order_id,
            user_id=user,
            total_amount=shelf.price * quantity,
            currency="EUR",
            user_email=f"chaos-{user.hex[:8]}@example.com",
            items=[
                OrderLine(
                    product_id=uuid.UUID(shelf.id),
                    name=shelf.name,
                    quantity=quantity,
                    unit_price=shelf.price,
                )
            ],
            payment_method_id="pm_card_visa",
        )

    def cancelled(of: OrderCreated) -> OrderCancelled:
        return OrderCancelled(
            order_id=of.order_id, user_id=of.user_id, user_email=of.user_email, reason="chaos"
        )

    # 1. The same OrderCreated twice: reserved once, authorised once, one e-mail.
    a = created(uuid.uuid4(), 2)
    chaos.synthetic.add(str(a.order_id))
    await publish([as_message(a, a.order_id)] * 2)
    await handled(a, ORDER_CREATED_CONSUMERS, 2)
    expect("shelf stock after a duplicated OrderCreated", await shelf_stock(), (8, 2, 0))
    expect("reservation of the duplicated order", await reservation(a.order_id), "reserved")
    expect(
        "payments of the duplicated order",
        [(s, amount) for s, amount, _ in await payments_of(a.order_id)],
        [("authorised", shelf.price * 2)],
    )
    sent = await query("notifications", "SELECT count(*) FROM deliveries WHERE event_id = $1", a.id)
    expect("e-mails for the duplicated OrderCreated", sent[0][0], 1)

    # 2. OrderCancelled before its OrderCreated: the late OrderCreated reserves and charges nothing.
    b = created(uuid.uuid4(), 3)
    chaos.synthetic.add(str(b.order_id))
    b_cancel = cancelled(b)
    await publish([as_message(b_cancel, b.order_id)])
    await handled(b_cancel, [*stock_payment, "notification_service"], 1)
    await publish([as_message(b, b.order_id)])
    await handled(b, ORDER_CREATED_CONSUMERS, 1)
    expect("shelf stock after a late OrderCreated", await shelf_stock(), (8, 2, 0))
    expect("reservation of the order cancelled first", await reservation(b.order_id), "cancelled")
    expect(
        "payments of the order cancelled first",
        await payments_of(b.order_id),
        [("cancelled", None, None)],
    )

    # 3. The same OrderCancelled twice: released once, voided once.
    a_cancel = cancelled(a)
    await publish([as_message(a_cancel, a.order_id)] * 2)
    await handled(a_cancel, [*stock_payment, "notification_service"], 2)
    expect("shelf stock after a duplicated OrderCancelled", await shelf_stock(), (10, 0, 0))
    expect(
        "reservation after a duplicated OrderCancelled", await reservation(a.order_id), "released"
    )
    expect(
        "payments after a duplicated OrderCancelled",
        [s for s, _, _ in await payments_of(a.order_id)],
        ["voided"],
    )
    return Fault(
        "6 events: OrderCreated x2, OrderCancelled before OrderCreated, OrderCancelled x2",
        6,
        violations,
        [
            "the synthetic order's StockReserved and PaymentProcessed find no order in "
            "order_service: retried, then parked (as the poison scenario checks for its own)"
        ],
    )


async def poison(chaos: Chaos, load: Load) -> Fault:
    """A malformed OrderCreated: parked at once by every consumer, the rest flows on. And
    the well-formed StockReserved for an unknown order published at the start: retried,
    parked after MAX_DELIVERY_ATTEMPTS attempts."""
    message_id = str(uuid.uuid4())
    body = b'{"id": "' + message_id.encode() + b'", "orderId": 42, "items": [{"productId": nu'
    await publish([(body, "OrderCreated", message_id, "order.created", None)])
    violations: list[str] = []
    notes: list[str] = []
    attempts: dict[str, list[int]] = {}
    for service in ORDER_CREATED_CONSUMERS:
        found: list[ParkedMessage] = []

        async def is_parked(service: str = service) -> bool:
            nonlocal found
            found = await parked(service, message_id)
            return bool(found)

        if not await wait_until(is_parked, 30, 0.5):
            violations.append(f"the malformed OrderCreated is not in {service}.parked after 30 s")
            continue
        attempts[service] = [m.attempts for m in found]
        if any(m.attempts != 1 or "invalid OrderCreated body" not in m.error for m in found):
            violations.append(f"malformed OrderCreated in {service}.parked: {found[0]}")
    notes.append(
        "malformed OrderCreated parked at attempt "
        + ", ".join(f"{s}: {a}" for s, a in attempts.items())
    )
    count = 1
    if chaos.retry_poison is not None:
        count += 1
        event_id, published = chaos.retry_poison
        retry_window = sum(1000 * 2**n for n in range(MAX_ATTEMPTS - 1)) / 1000
        wait = max(30.0, published + retry_window + 60 - time.monotonic())
        copies: list[ParkedMessage] = []

        async def retried_out() -> bool:
            nonlocal copies
            copies = await parked("order_service", event_id)
            return bool(copies)

        if not await wait_until(retried_out, wait, 1.0):
            violations.append(f"StockReserved for an unknown order not parked within {wait:.0f} s")
        else:
            notes.append(
                "StockReserved for an unknown order: parked in order_service.parked after "
                + ", ".join(str(m.attempts) for m in copies)
                + f" attempts ({copies[0].error[:60]})"
            )
            if any(m.attempts != MAX_ATTEMPTS for m in copies):
                violations.append(
                    f"StockReserved parked after {[m.attempts for m in copies]} attempts, "
                    f"not {MAX_ATTEMPTS}"
                )
    return Fault(
        "malformed OrderCreated; StockReserved for an unknown order", count, violations, notes
    )
