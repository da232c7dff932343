"""The saga deadline: orders still PENDING past it are cancelled (safe with several replicas)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.domain import DeadlinePassed, Status
from order_service.models import Order
from order_service.service import advance, record
from shared_core.background import BackgroundTask

log = structlog.get_logger(__name__)
BATCH = 100


async def cancel_overdue(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Cancel one batch of overdue orders; SKIP LOCKED lets replicas share the work."""
    async with sessionmaker() as session, session.begin():
        overdue = (
            await session.scalars(
                sa.select(Order)
                .where(Order.status == Status.PENDING, Order.deadline_at < sa.func.now())
                .order_by(Order.deadline_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for order in overdue:
            record(session, order, "DeadlinePassed", "received")
            await advance(session, order, DeadlinePassed())
    if overdue:
        log.warning("orders_cancelled_at_deadline", count=len(overdue))
    return len(overdue)


class DeadlineSweeper(BackgroundTask):
    task_name = "saga-deadline-sweeper"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self.sessionmaker = sessionmaker
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                while await cancel_overdue(self.sessionmaker) == BATCH:
                    pass
            except Exception:
                log.exception("deadline_sweep_failed")
            await asyncio.sleep(self.interval_s)
