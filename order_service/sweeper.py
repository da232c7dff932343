"""The saga deadline: orders still PENDING past it are cancelled (safe with several replicas).
The same loop measures what the alerts watch: orders by status, the oldest PENDING one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.domain import DeadlinePassed, Status
from order_service.models import Order
from order_service.saga import advance, lock_overdue
from shared_core.background import BackgroundTask

log = structlog.get_logger(__name__)
BATCH = 100
# Counting every status scans the table: once a minute. PENDING (a partial index): every sweep.
ALL_STATUSES_EVERY_S = 60.0

ORDERS = Gauge("orders", "Orders by status.", ["service", "status"])
PENDING_OLDEST_AGE = Gauge(
    "order_pending_oldest_age_seconds",
    "How long the oldest PENDING order has waited for its saga (0: none is PENDING).",
    ["service"],
)
SERVICE = "order_service"


async def cancel_overdue(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Cancel one batch of overdue orders; SKIP LOCKED lets replicas share the work."""
    async with sessionmaker() as session, session.begin():
        overdue = await lock_overdue(session, BATCH)
        for order in overdue:
            await advance(session, order, DeadlinePassed(), ("DeadlinePassed", "received", None))
    if overdue:
        log.warning("orders_cancelled_at_deadline", count=len(overdue))
    return len(overdue)


async def measure(sessionmaker: async_sessionmaker[AsyncSession], every_status: bool) -> None:
    async with sessionmaker() as session:
        pending, oldest = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(Order.created_at)).where(
                    Order.status == Status.PENDING
                )
            )
        ).one()
        if every_status:
            counts = dict(
                (
                    await session.execute(
                        sa.select(Order.status, sa.func.count()).group_by(Order.status)
                    )
                ).all()
            )
            for status in Status:
                ORDERS.labels(SERVICE, status.value).set(counts.get(status.value, 0))
    ORDERS.labels(SERVICE, Status.PENDING.value).set(pending)
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    PENDING_OLDEST_AGE.labels(SERVICE).set(max(age, 0.0))


class DeadlineSweeper(BackgroundTask):
    task_name = "saga-deadline-sweeper"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self.sessionmaker = sessionmaker
        self.interval_s = interval_s

    async def run(self) -> None:
        counted_at = 0.0
        while True:
            try:
                while await cancel_overdue(self.sessionmaker) == BATCH:
                    pass
                every_status = time.monotonic() - counted_at >= ALL_STATUSES_EVERY_S
                await measure(self.sessionmaker, every_status)
                if every_status:
                    counted_at = time.monotonic()
            except Exception:
                log.exception("deadline_sweep_failed")
            await asyncio.sleep(self.interval_s)
