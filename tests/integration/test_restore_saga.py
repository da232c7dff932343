"""The whole system restored to an instant T under load, as `make restore-db FORCE=1 TIME=T`
does it (docs/operations.md, "What a restore does to the saga"), on a PostgreSQL cluster, a
RabbitMQ vhost and a Redis database of the test's own.

Customers order through the gateway; T is noted in the middle of it; a moment later the payment
service goes down, so the broker holds undelivered commands when the restore starts, and the
outboxes of the restored databases hold events not yet published at T. After the restore and
the services' start: every order answered before T exists, none sent after T does, every saga
settles, no step of an order is applied twice, and `make verify` finds nothing to say."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from scripts import drill, pitr
from scripts.stack import fresh_vhost, running_pid
from shared_events.topology import parked_queue_name
from shared_runtime.registry import SERVICES
from tests.pg_cluster import scratch_cluster
from tests.support import ROOT, rabbitmqctl

NAME = "restore"
VHOST = "ecommerce_restore"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REDIS_URL = "redis://127.0.0.1:6379/13"
GATEWAY_PORT = 28080
PORT_OFFSET = 20000
RUN = ROOT / ".run" / NAME


def stack(cluster: pitr.Cluster, command: str) -> None:
    """scripts/stack.py start|stop for this test's stack."""
    args = ["--name", NAME, "--gateway-port", str(GATEWAY_PORT)]
    args += ["--port-offset", str(PORT_OFFSET), "--amqp-url", AMQP_URL]
    args += ["--pg-port", str(cluster.port)]
    env = dict(os.environ, REDIS_URL=REDIS_URL, GATEWAY_API_RATE="100000r/s")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), command, *args],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[pitr.Cluster]:
    """Archiving and a first backup, before any service database exists."""
    with scratch_cluster(tcp=True) as cluster:
        pitr.setup(cluster)
        pitr.backup(cluster, "full")
        fresh_vhost(VHOST)
        redis.Redis.from_url(REDIS_URL).flushdb()
        try:
            yield cluster
        finally:
            stack(cluster, "stop")
            rabbitmqctl("delete_vhost", VHOST)


def stop_payments() -> None:
    """The payment service stops (SIGTERM), as a crash or a deploy would take it away."""
    pid = running_pid(RUN / "payment_service.pid")
    assert pid, "the payment service is not running"
    os.kill(pid, signal.SIGTERM)


def fetch(cluster: pitr.Cluster, database: str, sql: str) -> list[asyncpg.Record]:
    async def rows() -> list[asyncpg.Record]:
        dsn = f"postgresql://postgres@127.0.0.1:{cluster.port}/{database}"
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(rows())


async def load_with_a_payment_outage(gateway: str, pg: str) -> tuple[list[drill.Placed], str]:
    """The drill's load; 1.5 s after T the payment service goes down, until the restore."""
    seconds, rate = 8.0, 6.0

    async def payments_fail_after_t() -> None:
        await asyncio.sleep(seconds / 2 + 1.5)
        await asyncio.to_thread(stop_payments)

    outage = asyncio.create_task(payments_fail_after_t())
    placed, instant = await drill.place_orders(seconds, rate, seconds / 2, gateway, pg)
    await outage
    return placed, instant


def test_a_restore_under_load_leaves_every_saga_consistent(cluster, monkeypatch):
    stack(cluster, "start")
    pg = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    gateway = f"http://127.0.0.1:{GATEWAY_PORT}"
    placed, instant = asyncio.run(load_with_a_payment_outage(gateway, pg))
    t = float(asyncio.run(drill.epoch_of(instant, pg)))
    ids = [p.order_id for p in placed if p.order_id]
    before = {p.order_id for p in placed if p.order_id and p.answered < t}
    after = {p.order_id for p in placed if p.order_id and p.sent > t}
    assert len(ids) == len(placed) and len(before) >= 10 and len(after) >= 10

    # make restore-db FORCE=1 TIME=T: services stopped, cluster restored, events settled.
    stack(cluster, "stop")
    pitr.restore(cluster, instant)
    monkeypatch.setenv("AMQP_URL", AMQP_URL)
    said = pitr.settle_events(cluster, instant)
    dropped, replayed = (int(n) for n in re.findall(r"(\d+) (?:message|event)", said))
    assert dropped > 0, said  # the payment commands sent while it was down
    assert replayed > 0, said
    stack(cluster, "start")

    found = asyncio.run(drill.existing(ids, pg))
    assert before <= found, f"orders answered before T are missing: {sorted(before - found)}"
    assert not after & found, f"orders sent after T came back: {sorted(after & found)}"
    assert asyncio.run(drill.settle(sorted(found), 90, pg)) == 0, "orders still PENDING after 90 s"

    # No step of a saga happened twice: each event an order received is in its timeline once.
    doubled = fetch(
        cluster,
        "orders",
        "SELECT order_id, event, count(*) FROM order_timeline WHERE direction = 'in'"
        " GROUP BY order_id, event HAVING count(*) > 1",
    )
    assert not doubled, doubled
    depth = rabbitmqctl("list_queues", "-p", VHOST, "name", "messages")
    for service in SERVICES:
        parked = re.search(rf"^{re.escape(parked_queue_name(service))}\s+(\d+)$", depth, re.M)
        assert parked is None or parked.group(1) == "0", f"{service} parked messages"
    verify = subprocess.run(
        [sys.executable, "scripts/verify.py", "--settled"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, VERIFY_PG=pg),
    )
    assert verify.returncode == 0, verify.stdout
    assert f"{len(found)} orders" in verify.stdout, verify.stdout
