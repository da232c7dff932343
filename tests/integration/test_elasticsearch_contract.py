"""Log shipping with the real elasticsearch client against a local fake of Elasticsearch."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from shared_runtime.log_shipping import LogShipper
from shared_runtime.logs import configure_logging, formatter
from tests.fake_api import FakeApi, Reply
from tests.support import eventually

SERVICE = "contract_service"
# Every answer carries the header the client checks to know it talks to Elasticsearch.
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}


class FakeElasticsearch(FakeApi):
    """The index template and bulk APIs, as documented."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gate = threading.Event()  # cleared: every answer hangs until it is set
        self.gate.set()
        self.fail = fail
        self.templates: dict[str, Any] = {}
        self.policies: dict[str, Any] = {}
        self.documents: list[tuple[str, dict[str, Any]]] = []

    def answer(self, request: dict[str, Any]) -> Reply:
        self.gate.wait(timeout=30)
        if self.fail:
            error = {"type": "cluster_block_exception", "reason": "blocked"}
            return 503, {"error": {"root_cause": [error], **error}, "status": 503}, PRODUCT
        path = request["path"].split("?")[0]
        if request["method"] == "PUT" and path.startswith("/_index_template/"):
            self.templates[path.rsplit("/", 1)[1]] = request["json"]
            return 200, {"acknowledged": True}, PRODUCT
        if request["method"] == "PUT" and path.startswith("/_ilm/policy/"):
            self.policies[path.rsplit("/", 1)[1]] = request["json"]
            return 200, {"acknowledged": True}, PRODUCT
        if request["method"] in ("POST", "PUT") and path == "/_bulk":
            lines = [json.loads(line) for line in request["body"].splitlines() if line.strip()]
            items = []
            for action, source in zip(lines[::2], lines[1::2], strict=True):
                index = action["index"]["_index"]
                self.documents.append((index, source))
                items.append(
                    {
                        "index": {
                            "_index": index,
                            "_id": str(len(self.documents)),
                            "status": 201,
                            "result": "created",
                        }
                    }
                )
            return 200, {"took": 3, "errors": False, "items": items}, PRODUCT
        return 404, {"error": "no handler", "status": 404}, PRODUCT


@pytest.fixture
async def shipping() -> AsyncIterator[Any]:
    """Logging configured as a service does, plus a shipper to the fake; undone afterwards."""
    shippers: list[LogShipper] = []

    async def start(fake: FakeElasticsearch, **options: Any) -> LogShipper:
        configure_logging(SERVICE)
        shipper = LogShipper(fake.url, SERVICE, **options)
        shipper.setFormatter(formatter(SERVICE))
        logging.getLogger().addHandler(shipper)
        shipper.start()
        shippers.append(shipper)
        return shipper

    yield start
    for shipper in shippers:
        logging.getLogger().removeHandler(shipper)
        await shipper.stop()


def dropped() -> float:
    return REGISTRY.get_sample_value("log_records_dropped_total", {"service": SERVICE}) or 0.0


async def test_records_are_shipped_in_bulk_to_the_daily_index(shipping):
    fake = FakeElasticsearch()
    try:
        await shipping(fake, flush_interval_s=0.05)
        log = structlog.get_logger("orders")
        structlog.contextvars.bind_contextvars(request_id="req-123", correlation_id="order-9")
        for n in range(30):
            log.info("order_step", order_id="order-9", step=n, password="hunter2")
        structlog.contextvars.clear_contextvars()
        await eventually(
            lambda: asyncio.sleep(0, result=len(fake.documents)), until=lambda n: n >= 30
        )
        index, doc = fake.documents[0]
        assert index.startswith(f"ecommerce-{SERVICE}-")
        assert len(index.rsplit("-", 1)[1]) == len("2026.11.24")
        assert doc["service"] == SERVICE
        assert doc["event"] == "order_step"
        assert (doc["request_id"], doc["correlation_id"], doc["order_id"]) == (
            "req-123",
            "order-9",
            "order-9",
        )
        assert doc["password"] == "[REDACTED]"
        assert "timestamp" in doc and doc["level"] == "info"
        bulk = [r for r in fake.requests if r["path"].startswith("/_bulk")]
        assert len(bulk) < 30  # batched, not one request per record
        assert bulk[0]["headers"]["Content-Type"].startswith(
            "application/vnd.elasticsearch+x-ndjson"
        )
        # Every day's index is deleted 30 days after it was made (the lifecycle policy the
        # template names, installed before it).
        policy = fake.policies["ecommerce-logs"]["policy"]
        assert policy["phases"]["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
        paths = [r["path"].split("?")[0] for r in fake.requests if r["method"] == "PUT"]
        assert paths.index("/_ilm/policy/ecommerce-logs") < paths.index(
            "/_index_template/ecommerce-logs"
        )
        template = fake.templates["ecommerce-logs"]
        assert template["template"]["settings"]["index.lifecycle.name"] == "ecommerce-logs"
        assert template["index_patterns"] == ["ecommerce-*"]
        properties = template["template"]["mappings"]["properties"]
        for field in (
            "timestamp",
            "level",
            "service",
            "event",
            "request_id",
            "correlation_id",
            "trace_id",
            "span_id",
            "order_id",
            "user_id",
            "route",
            "status",
            "duration_ms",
        ):
            assert field in properties, field
        assert properties["timestamp"]["type"] == "date"
    finally:
        fake.close()


async def test_a_hanging_then_failing_elasticsearch_never_holds_logging_up(shipping):
    fake = FakeElasticsearch(fail=True)
    fake.gate.clear()  # Elasticsearch hangs
    try:
        await shipping(fake, max_buffer=100, batch_size=50, flush_interval_s=0.05)
        before = dropped()
        log = structlog.get_logger("busy")
        for n in range(2_000):  # would never finish if logging waited on Elasticsearch
            log.info("busy_request", n=n)
        # The buffer holds 100 (and a batch may be in flight): the rest are counted, not queued.
        assert dropped() - before >= 2_000 - 100 - 50
        fake.gate.set()  # now it answers, with errors: what was in flight is dropped too
        await eventually(
            lambda: asyncio.sleep(0, result=dropped() - before),
            until=lambda n: n >= 2_000,
            timeout=10,
        )
    finally:
        fake.gate.set()
        fake.close()
