"""The outbox relay: publishes committed outbox rows with confirms and marks them sent.

Several replicas may run: each claims a batch with ``FOR UPDATE SKIP LOCKED`` inside a
transaction, publishes the whole batch with its confirms in flight together, then marks
what the broker confirmed in one UPDATE. A row is marked only after its confirm, so a
crash in between republishes it (the consumers' inbox drops the duplicate).

It sleeps only when the outbox is empty, and is woken by NOTIFY on commit
(``shared_events.store.add_event``); the poll interval is a safety net, not the latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared_core.background import BackgroundTask
from shared_core.context import continued_trace
from shared_events.bus import EventBus
from shared_events.store import OUTBOX_CHANNEL, outbox

log = structlog.get_logger(__name__)

EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events published from the outbox.", ["service", "event_type"]
)
PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total", "Outbox rows whose publish failed (retried).", ["service"]
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Unpublished outbox rows at the last check.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unsent_age_seconds",
    "Age of the oldest unpublished outbox row at the last check (0 when none).",
    ["service"],
)

RETENTION = "7 days"
HOUSEKEEPING_EVERY_S = 15.0


class OutboxRelay(BackgroundTask):
    def __init__(
        self,
        *,
        service: str,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        database_url: str,
        batch_size: int = 200,
        poll_interval_s: float = 2.0,
    ) -> None:
        self.service = service
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.listen_dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self.task_name = f"outbox-relay-{service}"

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        last_check = 0.0
        try:
            while True:
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                self._wake.clear()
                try:
                    published, failed = await self.publish_batch()
                except Exception:
                    log.exception("outbox_relay_error", service=self.service)
                    published, failed = 0, 1
                if published == self.batch_size and not failed:
                    continue  # busy: straight on to the next batch
                if time.monotonic() - last_check > HOUSEKEEPING_EVERY_S:
                    last_check = time.monotonic()
                    await self._housekeeping()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()

    async def publish_batch(self) -> tuple[int, int]:
        """Publish one batch; return (published, failed)."""
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(outbox)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.created_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, 0
            results = await asyncio.gather(
                *(self._publish(row) for row in rows), return_exceptions=True
            )
            sent = [row.id for row, result in zip(rows, results, strict=True) if result is None]
            if sent:
                await session.execute(
                    outbox.update().where(outbox.c.id.in_(sent)).values(published_at=sa.func.now())
                )
        failed = len(rows) - len(sent)
        for row, result in zip(rows, results, strict=True):
            if result is None:
                EVENTS_PUBLISHED.labels(self.service, row.event_type).inc()
        if failed:
            PUBLISH_FAILURES.labels(self.service).inc(failed)
            first_error = next(r for r in results if r is not None)
            log.warning(
                "outbox_publish_failed",
                service=self.service,
                failed=failed,
                error=repr(first_error),
            )
        return len(sent), failed

    async def _publish(self, row: Any) -> None:
        # In the trace of the work that wrote the event: its producer span is a child of it.
        with continued_trace(row.headers):
            await self.bus.publish(
                body=json.dumps(row.payload, separators=(",", ":")).encode(),
                event_type=row.event_type,
                message_id=str(row.id),
                routing_key=row.routing_key,
                correlation_id=row.correlation_id,
                headers=dict(row.headers),
                created_at=row.created_at,
            )

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self.listen_dsn)
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox_listen_unavailable", service=self.service, error=repr(exc))
            return None

    async def _housekeeping(self) -> None:
        """Report the backlog and drop rows published long ago."""
        try:
            async with self.sessionmaker() as session, session.begin():
                backlog, age = (
                    await session.execute(
                        sa.select(
                            sa.func.count(),
                            sa.func.extract(
                                "epoch", sa.func.now() - sa.func.min(outbox.c.created_at)
                            ),
                        ).where(outbox.c.published_at.is_(None))
                    )
                ).one()
                OUTBOX_BACKLOG.labels(self.service).set(backlog or 0)
                OUTBOX_OLDEST_AGE.labels(self.service).set(float(age or 0))
                await session.execute(
                    outbox.delete().where(
                        outbox.c.published_at < sa.func.now() - sa.text(f"interval '{RETENTION}'")
                    )
                )
        except Exception as exc:
            log.warning("outbox_housekeeping_failed", service=self.service, error=repr(exc))
