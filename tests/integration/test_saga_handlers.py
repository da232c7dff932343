"""The saga's handlers on the real databases: any arrival order, duplicates, replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.models import Order, OrderLine
from order_service.sweeper import cancel_overdue, measure
from payment_service import service as payments
from payment_service.models import Payment
from payment_service.providers import SandboxPaymentProvider
from product_service import service as stock
from product_service.cache import CatalogCache
from product_service.models import Category, Product, StockReservation
from shared_core.context import run_after_commit
from shared_events.events import OrderCancelled, OrderCreated, OrderShipped
from shared_events.events import OrderLine as EventLine
from shared_events.store import outbox
from shared_runtime.db import create_engine, create_sessionmaker
from tests.support import REDIS_URL, database_url, migrate


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    for service, database in [
        ("product_service", "products_test"),
        ("payment_service", "payments_test"),
        ("order_service", "orders_test"),
    ]:
        migrate(service, database)


@pytest.fixture
async def sessions() -> AsyncIterator[dict[str, async_sessionmaker[AsyncSession]]]:
    engines = {
        name: create_engine(database_url(f"{name}_test"), pool_size=20)
        for name in ("products", "payments", "orders")
    }
    yield {name: create_sessionmaker(engine) for name, engine in engines.items()}
    for engine in engines.values():
        await engine.dispose()


class NoCache(CatalogCache):
    def __init__(self) -> None:
        import redis.asyncio as redis

        super().__init__(redis.Redis.from_url(REDIS_URL), ttl_s=60, service="test")


async def make_product(sessionmaker: Any, available: int) -> uuid.UUID:
    product_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            sa.dialects.postgresql.insert(Category)
            .values(slug="kitchen", name="Kitchen")
            .on_conflict_do_nothing()
        )
        session.add(
            Product(
                id=product_id,
                sku=f"H-{product_id.hex[:10]}",
                name="Handler Pot",
                description="",
                category="kitchen",
                price=Decimal("10.00"),
                currency="EUR",
                available_quantity=available,
            )
        )
    return product_id


def created(product_id: uuid.UUID, quantity: int, pm: str = "pm_card_visa") -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        total_amount=Decimal("10.00") * quantity,
        currency="EUR",
        user_email="h@example.com",
        items=[
            EventLine(
                product_id=product_id, name="Pot", quantity=quantity, unit_price=Decimal("10.00")
            )
        ],
        payment_method_id=pm,
    )


def cancelled(event: OrderCreated) -> OrderCancelled:
    return OrderCancelled(
        order_id=event.order_id, user_id=event.user_id, user_email="h@example.com", reason="x"
    )


async def in_tx(sessionmaker: Any, action: Any) -> None:
    async with sessionmaker() as session:
        async with session.begin():
            await action(session)
        await run_after_commit(session)


async def product_row(sessionmaker: Any, product_id: uuid.UUID) -> Product:
    async with sessionmaker() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        return product


async def test_cancel_before_create_leaves_a_tombstone_in_stock(sessions):
    products, cache = sessions["products"], NoCache()
    product_id = await make_product(products, available=5)
    order = created(product_id, 2)
    await in_tx(products, lambda s: stock.release(s, cache, order.order_id))
    await in_tx(products, lambda s: stock.reserve(s, cache, order))
    row = await product_row(products, product_id)
    assert (row.available_quantity, row.reserved_quantity) == (5, 0)
    async with products() as session:
        reservation = await session.get(StockReservation, order.order_id)
        assert reservation is not None and reservation.status == "cancelled"


async def test_reserve_release_and_sell_are_each_applied_once(sessions):
    products, cache = sessions["products"], NoCache()
    product_id = await make_product(products, available=5)
    kept, dropped = created(product_id, 2), created(product_id, 1)
    for _ in range(2):  # duplicates
        await in_tx(products, lambda s: stock.reserve(s, cache, kept))
        await in_tx(products, lambda s: stock.reserve(s, cache, dropped))
    row = await product_row(products, product_id)
    assert (row.available_quantity, row.reserved_quantity) == (2, 3)
    for _ in range(2):
        await in_tx(products, lambda s: stock.release(s, cache, dropped.order_id))
        await in_tx(products, lambda s: stock.sell(s, cache, kept.order_id))
    row = await product_row(products, product_id)
    assert (row.available_quantity, row.reserved_quantity, row.sold_quantity) == (3, 0, 2)
    # A cancel after shipping changes nothing: sold is sold.
    await in_tx(products, lambda s: stock.release(s, cache, kept.order_id))
    row = await product_row(products, product_id)
    assert (row.available_quantity, row.sold_quantity) == (3, 2)


async def test_concurrent_reservations_never_oversell(sessions):
    products, cache = sessions["products"], NoCache()
    product_id = await make_product(products, available=7)
    orders = [created(product_id, 1) for _ in range(20)]
    await asyncio.gather(
        *(in_tx(products, lambda s, o=o: stock.reserve(s, cache, o)) for o in orders)
    )
    row = await product_row(products, product_id)
    assert (row.available_quantity, row.reserved_quantity) == (0, 7)
    async with products() as session:
        statuses = (
            await session.scalars(
                sa.select(StockReservation.status).where(
                    StockReservation.order_id.in_([o.order_id for o in orders])
                )
            )
        ).all()
    assert sorted(statuses) == ["failed"] * 13 + ["reserved"] * 7


async def test_payment_cancel_before_create_authorises_nothing(sessions):
    payments_db, provider = sessions["payments"], SandboxPaymentProvider()
    order = created(uuid.uuid4(), 1)
    await in_tx(payments_db, lambda s: payments.void(s, provider, cancelled(order)))
    await in_tx(payments_db, lambda s: payments.authorise(s, provider, order))
    assert provider.calls == []
    async with payments_db() as session:
        payment = await session.scalar(sa.select(Payment).where(Payment.order_id == order.order_id))
        assert payment is not None and payment.status == "cancelled"


async def test_payment_is_authorised_captured_and_voided_once(sessions):
    payments_db, provider = sessions["payments"], SandboxPaymentProvider()
    shipped_order, cancelled_order = created(uuid.uuid4(), 2), created(uuid.uuid4(), 1)
    shipped = OrderShipped(
        order_id=shipped_order.order_id,
        tracking_number="T-9",
        user_id=shipped_order.user_id,
        user_email="h@example.com",
    )
    for _ in range(2):
        await in_tx(payments_db, lambda s: payments.authorise(s, provider, shipped_order))
        await in_tx(payments_db, lambda s: payments.authorise(s, provider, cancelled_order))
    for _ in range(2):
        await in_tx(payments_db, lambda s: payments.capture(s, provider, shipped))
        await in_tx(payments_db, lambda s: payments.void(s, provider, cancelled(cancelled_order)))
    operations = [operation for operation, _ in provider.calls]
    assert sorted(operations) == ["authorise", "authorise", "capture", "void"]
    async with payments_db() as session:
        rows = {
            p.order_id: p
            for p in await session.scalars(
                sa.select(Payment).where(
                    Payment.order_id.in_([shipped_order.order_id, cancelled_order.order_id])
                )
            )
        }
    assert rows[shipped_order.order_id].status == "captured"
    assert rows[shipped_order.order_id].amount == Decimal("20.00")
    assert rows[cancelled_order.order_id].status == "voided"


def pending_order(order_id: uuid.UUID, created_at: datetime, deadline_at: datetime) -> Order:
    return Order(
        id=order_id,
        user_id=uuid.uuid4(),
        user_email="late@example.com",
        idempotency_key=str(order_id),
        status="PENDING",
        stock_status="done",
        payment_status="pending",
        total_amount=Decimal("1.00"),
        currency="EUR",
        shipping_address={},
        payment_method_id="pm_card_visa",
        created_at=created_at,
        deadline_at=deadline_at,
        lines=[
            OrderLine(
                position=0,
                product_id=uuid.uuid4(),
                name="x",
                quantity=1,
                unit_price=Decimal("1.00"),
            )
        ],
        timeline=[],
    )


async def test_the_deadline_sweeper_is_safe_with_replicas(sessions):
    orders_db = sessions["orders"]
    past = datetime.now(UTC) - timedelta(minutes=1)
    ids = [uuid.uuid4() for _ in range(150)]
    async with orders_db() as session, session.begin():
        for order_id in ids:
            session.add(pending_order(order_id, past - timedelta(minutes=30), past))

    async def replica() -> int:
        total = 0
        while (n := await cancel_overdue(orders_db)) > 0:
            total += n
        return total

    swept = await asyncio.gather(replica(), replica(), replica())
    assert sum(swept) >= len(ids)
    async with orders_db() as session:
        statuses = (await session.scalars(sa.select(Order.status).where(Order.id.in_(ids)))).all()
        assert set(statuses) == {"CANCELLED"}
        emitted = (
            await session.scalars(
                sa.select(outbox.c.correlation_id).where(
                    outbox.c.event_type == "OrderCancelled",
                    outbox.c.correlation_id.in_([str(i) for i in ids]),
                )
            )
        ).all()
    assert sorted(emitted) == sorted(str(i) for i in ids)  # one OrderCancelled per order


async def test_the_sweeper_measures_the_oldest_pending_order_and_orders_by_status(sessions):
    orders_db = sessions["orders"]
    async with orders_db() as session, session.begin():
        await session.execute(sa.update(Order).values(status="CANCELLED"))  # earlier tests' orders
        waiting = datetime.now(UTC) - timedelta(minutes=7)
        session.add(pending_order(uuid.uuid4(), waiting, waiting + timedelta(minutes=30)))
        session.add(pending_order(uuid.uuid4(), datetime.now(UTC), datetime.now(UTC)))

    await measure(orders_db, every_status=True)

    def gauge(name: str, **labels: str) -> float:
        value = REGISTRY.get_sample_value(name, {"service": "order_service", **labels})
        assert value is not None, (name, labels)
        return value

    assert 7 * 60 <= gauge("order_pending_oldest_age_seconds") < 8 * 60
    assert gauge("orders", status="PENDING") == 2
    async with orders_db() as session:
        cancelled = await session.scalar(
            sa.select(sa.func.count()).select_from(Order).where(Order.status == "CANCELLED")
        )
    assert gauge("orders", status="CANCELLED") == cancelled
    assert gauge("orders", status="SHIPPED") == 0

    async with orders_db() as session, session.begin():
        await session.execute(sa.update(Order).values(status="CONFIRMED"))
    await measure(orders_db, every_status=False)
    assert gauge("order_pending_oldest_age_seconds") == 0
    assert gauge("orders", status="PENDING") == 0
