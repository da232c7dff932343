"""Shipping the JSON log records to Elasticsearch, in bulk, in the background.

A logging handler puts each rendered record in a bounded in-memory buffer and returns at
once: a request never waits for Elasticsearch. A task drains the buffer in batches (by size,
or every ``flush_interval_s``) through the client's async bulk helper into the daily index
``ecommerce-<service>-<yyyy.mm.dd>``. When the buffer is full or Elasticsearch fails, records
are dropped, counted in ``log_records_dropped_total``, and said once in the log (and once more
when shipping works again), not once per record. Stdout keeps every line either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk
from prometheus_client import Counter

from shared_core.background import BackgroundTask

LOG_RECORDS_DROPPED = Counter(
    "log_records_dropped_total",
    "Log records not shipped to Elasticsearch (buffer full or Elasticsearch failing).",
    ["service"],
)
LOG_RECORDS_SHIPPED = Counter(
    "log_records_shipped_total", "Log records shipped to Elasticsearch.", ["service"]
)
TEMPLATE_NAME = "ecommerce-logs"
# Each day's index (ecommerce-<service>-<day>) is deleted this many days after it was made.
LIFECYCLE_NAME = "ecommerce-logs"
TEMPLATE = Path(__file__).parent / "elasticsearch" / "index_template.json"

# The shipper's own reports go to stdout only, never back into the buffer.
report = logging.getLogger("shared_runtime.log_shipping")


class LogShipper(BackgroundTask, logging.Handler):
    def __init__(
        self,
        url: str,
        service: str,
        *,
        max_buffer: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        request_timeout_s: float = 5.0,
        retention_days: int = 30,
    ) -> None:
        super().__init__()
        self.service = service
        self.retention_days = retention_days
        self.client = AsyncElasticsearch(url, request_timeout=request_timeout_s, max_retries=0)
        self.buffer: queue.Queue[str] = queue.Queue(maxsize=max_buffer)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.dropping = False
        self.template_installed = False

    # --- the logging side: called from any thread, never blocks ----------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("shared_runtime.log_shipping", "elastic")):
            return
        try:
            self.buffer.put_nowait(self.format(record))
        except queue.Full:
            self._dropped(1, "the log buffer is full")
        except Exception:
            self.handleError(record)

    def _dropped(self, count: int, why: str) -> None:
        LOG_RECORDS_DROPPED.labels(self.service).inc(count)
        if not self.dropping:
            self.dropping = True
            report.warning("log_shipping_dropping_records", extra={"reason": why})

    # --- the shipping side: a task in the service's event loop -----------------------------

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ship_pending(), timeout=2.0)
        await self.client.close()

    async def run(self) -> None:
        while True:
            if self.buffer.qsize() < self.batch_size:
                await asyncio.sleep(self.flush_interval_s)
            await self.ship_pending()

    async def ship_pending(self) -> None:
        while lines := self._take(self.batch_size):
            await self._ship(lines)
            if len(lines) < self.batch_size:
                return

    def _take(self, limit: int) -> list[str]:
        lines: list[str] = []
        with contextlib.suppress(queue.Empty):
            while len(lines) < limit:
                lines.append(self.buffer.get_nowait())
        return lines

    async def _ship(self, lines: list[str]) -> None:
        try:
            if not self.template_installed:
                await self.install_template()
            actions = [self._action(line) for line in lines]
            shipped, errors = await async_bulk(
                self.client, actions, raise_on_error=False, stats_only=True
            )
        except Exception as exc:
            self._dropped(len(lines), f"Elasticsearch failed: {type(exc).__name__}")
            return
        LOG_RECORDS_SHIPPED.labels(self.service).inc(shipped)
        failed = errors if isinstance(errors, int) else len(errors)
        if failed:
            self._dropped(failed, "Elasticsearch refused some records")
        elif self.dropping:
            self.dropping = False
            report.warning("log_shipping_resumed")

    def _action(self, line: str) -> dict[str, Any]:
        doc = json.loads(line)
        day = str(doc.get("timestamp", ""))[:10].replace("-", ".") or "unknown"
        return {"_index": f"ecommerce-{self.service}-{day}", "_source": doc}

    async def install_template(self) -> None:
        """The lifecycle policy (each day's index deleted ``retention_days`` after it was made),
        then the index template that names it: every new ecommerce-* index gets both."""
        await self.client.ilm.put_lifecycle(
            name=LIFECYCLE_NAME,
            policy={
                "phases": {
                    "hot": {"min_age": "0ms", "actions": {"set_priority": {"priority": 100}}},
                    "delete": {
                        "min_age": f"{self.retention_days}d",
                        "actions": {"delete": {}},
                    },
                },
                "_meta": {"description": "Logs of the e-commerce services and gateway"},
            },
        )
        body = json.loads(TEMPLATE.read_text())
        body["meta"] = body.pop("_meta", None)
        body["template"]["settings"]["index.lifecycle.name"] = LIFECYCLE_NAME
        await self.client.indices.put_index_template(name=TEMPLATE_NAME, **body)
        self.template_installed = True
