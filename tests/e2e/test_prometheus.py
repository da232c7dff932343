"""A real Prometheus (Debian's package, installed by `make test`) against the test stack with the
project's alert rules: every target up, every dashboard and rule expression valid, and an alert
going pending when its fault happens."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from shared_runtime.registry import SERVICES
from tests.e2e.conftest import PORT_OFFSET, RUN_DIR, stack_command
from tests.support import ROOT, eventually, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DASHBOARD = ROOT / "observability" / "grafana" / "dashboards" / "ecommerce.json"
RULES = ROOT / "observability" / "alerts.yml"
# Grafana's variables, as Grafana would fill them in for "All" over the last hour.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$service": ".*"}


def all_up(answer: httpx.Response) -> bool:
    active = answer.json()["data"]["activeTargets"]
    return len(active) == len(SERVICES) + 2 and all(t["health"] == "up" for t in active)


@pytest.fixture
async def prometheus(stack: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """observability/prometheus.yml's jobs with static targets instead of Consul, every second."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "ecommerce",
                "static_configs": [
                    # Each service's internal port, the one it registers in Consul.
                    {
                        "targets": [
                            f"127.0.0.1:{s.internal_port + PORT_OFFSET}" for s in SERVICES.values()
                        ]
                    }
                ],
            },
            {"job_name": "rabbitmq", "static_configs": [{"targets": ["127.0.0.1:15692"]}]},
            {
                "job_name": "rabbitmq-queues",
                "metrics_path": "/metrics/detailed",
                "params": {"family": ["queue_coarse_metrics", "queue_consumer_count"]},
                "static_configs": [{"targets": ["127.0.0.1:15692"]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        PROMETHEUS,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1") as client:

            async def started() -> bool:
                try:
                    return (await client.get("/status/runtimeinfo")).status_code == 200
                except httpx.TransportError:  # not listening yet
                    return False

            await eventually(started, until=bool, timeout=30, what="Prometheus started")
            yield client
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def test_every_target_is_up_and_every_expression_is_valid(prometheus):
    targets = await eventually(
        lambda: prometheus.get("/targets"),
        until=all_up,
        timeout=30,
        what="every target up",
    )
    jobs = {t["labels"]["job"] for t in targets.json()["data"]["activeTargets"]}
    assert jobs == {"ecommerce", "rabbitmq", "rabbitmq-queues"}
    assert len(targets.json()["data"]["activeTargets"]) == len(SERVICES) + 2

    expressions = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    for expr in expressions:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        answer = await prometheus.get("/query", params={"query": expr})
        assert answer.json()["status"] == "success", (expr, answer.text)
    rules = await eventually(
        lambda: prometheus.get("/rules"),
        until=lambda r: (
            all(rule["health"] == "ok" for g in r.json()["data"]["groups"] for rule in g["rules"])
            and r.json()["data"]["groups"]
        ),
        timeout=30,
        what="every rule evaluated without error",
    )
    evaluated = {rule["name"] for g in rules.json()["data"]["groups"] for rule in g["rules"]}
    expected = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert evaluated == expected
    # The series the queue alerts need are there, for the test stack's own queues.
    consumers = await prometheus.get(
        "/query", params={"query": 'rabbitmq_detailed_queue_consumers{vhost="ecommerce_test"}'}
    )
    queues = {r["metric"]["queue"] for r in consumers.json()["data"]["result"]}
    assert set(SERVICES) - {"user_service"} <= queues


async def test_a_queue_left_without_its_consumer_makes_its_alert_pending(prometheus):
    def alerts_for_notifications(answer: httpx.Response) -> list[dict]:
        return [
            a
            for a in answer.json()["data"]["alerts"]
            if a["labels"]["alertname"] == "QueueWithoutConsumer"
            and a["labels"].get("queue") == "notification_service"
            and a["labels"].get("vhost") == "ecommerce_test"
        ]

    await eventually(
        lambda: prometheus.get("/targets"),
        until=all_up,
        timeout=30,
        what="every target up",
    )
    assert alerts_for_notifications(await prometheus.get("/alerts")) == []
    pid = int((RUN_DIR / "notification_service.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        pending = await eventually(
            lambda: prometheus.get("/alerts"),
            until=lambda r: bool(alerts_for_notifications(r)),
            timeout=30,
            what="QueueWithoutConsumer pending for notification_service",
        )
        [alert] = alerts_for_notifications(pending)
        assert alert["state"] == "pending"  # for: 1m, then it fires
        assert alert["annotations"]["runbook"] == "docs/operations.md#queuewithoutconsumer"
    finally:
        await asyncio.to_thread(stack_command, "start")
