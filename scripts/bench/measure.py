"""What the benchmark reads off the running system: Prometheus counters, CPU time per part of
the system, the queues' backlog, peak memory."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from shared_runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parent.parent.parent


def metric(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by each part of the system: the six services, nginx,
    PostgreSQL, RabbitMQ and Redis (processes that exited meanwhile are not counted)."""
    services = {}
    for service in SERVICES:
        # Every replica's (make dev REPLICAS=n): <service>.pid, <service>.1.pid, ...
        for pid_file in (ROOT / ".run" / "dev").glob(f"{service}*.pid"):
            try:
                services[int(pid_file.read_text())] = service
            except (OSError, ValueError):
                continue
    groups = {"postgres": "postgresql", "beam.smp": "rabbitmq", "erl_child_setup": "rabbitmq"}
    groups |= {"inet_gethost": "rabbitmq", "epmd": "rabbitmq", "nginx": "nginx"}
    groups |= {"redis-server": "redis"}
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        group = services.get(int(entry.name)) or groups.get(comm)
        if group is not None:
            used[group] = used.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def settle(deadline_s: float = 300) -> None:
    """Wait until the services' queues are empty: the e-mails and stock moves of a run trail
    its confirmations, and the next run should not start on that backlog."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        vhost = unquote(urlparse(amqp_url).path[1:]) or "/"
        queues = ["list_queues", "-p", vhost, "name", "messages"]
        out = subprocess.run(
            ["rabbitmqctl", "-q", "--no-table-headers", *queues],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = (line.split("\t") for line in out.splitlines() if "\t" in line)
        if all(int(n) == 0 for name, n in rows if not name.endswith(".parked")):
            return
        time.sleep(1)
    raise TimeoutError(f"the service queues were not empty after {deadline_s} s")


def peak_memory() -> dict[str, float]:
    peaks = {}
    for service in SERVICES:
        pid_file = ROOT / ".run" / "dev" / f"{service}.pid"
        try:
            status = Path(f"/proc/{int(pid_file.read_text())}/status").read_text()
        except (OSError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[service] = int(line.split()[1]) / 1024
    return peaks
