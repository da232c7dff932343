"""A service's two ports (shared_runtime.ports): what each serves, and the local stacks' ports."""

from __future__ import annotations

import argparse
import ast
import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

from scripts.stack import MAX_REPLICAS, replica_ports
from shared_runtime.ports import listening_sockets
from shared_runtime.registry import INTERNAL_PORT_STEP, SERVICES
from shared_runtime.service import server_for
from shared_runtime.settings import ServiceSettings
from tests.support import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
# The stores' and the broker's own local ports (PostgreSQL, Redis, AMQP, RabbitMQ's management,
# metrics, clustering and epmd).
INFRASTRUCTURE_PORTS = {5432, 6379, 5672, 15672, 15692, 25672, 4369}


def test_the_internal_port_is_the_registrys_step_above_the_public_one():
    assert [s.internal_port for s in SERVICES.values()] == [5101, 5102, 5103, 5104, 5105, 5106]
    assert all(s.internal_url().endswith(f":{s.internal_port}") for s in SERVICES.values())
    assert ServiceSettings(port=9000).internal_port == 9000 + INTERNAL_PORT_STEP
    assert ServiceSettings(port=8000, internal_port=8001).internal_port == 8001


def fixed_ports() -> dict[Path, dict[str, int]]:
    """The ports the scripts and tests name as constants (``GATEWAY_PORT = 18080``, ...), by
    file; a file with a ``PORT_OFFSET`` runs a stack of its own."""
    found = {}
    for path in [*ROOT.glob("scripts/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        names = {}
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target, value = node.targets[0], node.value
            pairs = [(target, value)]
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                pairs = list(zip(target.elts, value.elts, strict=True))
            for name, constant in pairs:
                if (
                    isinstance(name, ast.Name)
                    and name.id.endswith(("_PORT", "PORT_OFFSET"))
                    and isinstance(constant, ast.Constant)
                    and isinstance(constant.value, int)
                ):
                    names[name.id] = constant.value
        if names:
            found[path.relative_to(ROOT)] = names
    return found


def service_ports(offset: int) -> list[int]:
    """Every port the services of a stack started with ``--port-offset offset`` may take."""
    args = argparse.Namespace(port_offset=offset)
    return [
        port
        for service in SERVICES
        for replica in range(MAX_REPLICAS)
        for port in replica_ports(args, service, replica)
    ]


def test_every_local_stack_has_ports_of_its_own():
    named = fixed_ports()
    offsets = {0} | {ports["PORT_OFFSET"] for ports in named.values() if "PORT_OFFSET" in ports}
    assert {10000, 20000, 30000} <= offsets  # the tests, chaos and the restore test, bench-scale
    gateways = {
        port for ports in named.values() for name, port in ports.items() if name != "PORT_OFFSET"
    }
    others = INFRASTRUCTURE_PORTS | {8080} | gateways
    taken: dict[int, int] = {}
    for offset in sorted(offsets):
        ports = service_ports(offset)
        # Within a stack: every replica of every service, public and internal, a port apart.
        assert len(set(ports)) == len(ports), f"offset {offset}: two processes share a port"
        for port in ports:
            assert port not in others, f"offset {offset}: {port} is taken by something else"
            first = taken.setdefault(port, offset)
            assert first == offset, f"{port} is taken by the stacks at offsets {first}, {offset}"


async def test_one_server_answers_on_both_ports_of_a_service():
    app = FastAPI()

    @app.get("/where")
    async def where(request: Request) -> dict[str, object]:
        return {"port": request.scope["server"][1]}

    settings = ServiceSettings(port=free_port(), internal_port=free_port())
    server = server_for(app)
    task = asyncio.create_task(server.serve(sockets=listening_sockets(settings)))
    try:
        await eventually(lambda: asyncio.sleep(0, result=server.started), timeout=15)
        async with httpx.AsyncClient() as client:
            for port in (settings.port, settings.internal_port):
                answer = await client.get(f"http://127.0.0.1:{port}/where")
                assert answer.json() == {"port": port}
    finally:
        server.should_exit = True
        await task
