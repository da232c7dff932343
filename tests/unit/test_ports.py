"""A service's two ports (shared_runtime.ports): what each serves, and the local stacks' ports."""

from __future__ import annotations

import argparse
import ast
import asyncio
import secrets
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from scripts.stack import MAX_REPLICAS, replica_ports
from shared_runtime.errors import install_error_handlers
from shared_runtime.ports import PortsMiddleware, client_address, listening_sockets
from shared_runtime.registry import INTERNAL_PORT_STEP, SERVICES
from shared_runtime.service import create_service_app, server_for
from shared_runtime.settings import ServiceSettings
from tests.support import error_of, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = secrets.token_urlsafe(48)
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


# --- what each port serves, and who the client is ----------------------------------------------

PUBLIC, INTERNAL = 5001, 5101
PEER = "10.1.2.3"  # the connection's other end: the gateway on the public port, a service inside
CLIENT = "203.0.113.7"  # the shopper, as the gateway names them


def ported_app(public: int = PUBLIC, internal: int = INTERNAL) -> FastAPI:
    """A service's shape: an API route, an internal route and the metrics, behind the
    middleware as create_service_app installs it."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(PortsMiddleware, public_port=public, internal_port=internal)

    @app.get("/users/who")
    async def who(request: Request) -> dict[str, object]:
        return {"client": client_address(request), "port": request.scope["server"][1]}

    @app.get("/internal/users/{user_id}/token-state")
    async def token_state(user_id: str) -> dict[str, object]:
        return {"tokenVersion": 0, "active": True}

    @app.get("/metrics")
    async def metrics() -> dict[str, object]:
        return {}

    return app


def on(port: int | None, peer: str = PEER) -> httpx.AsyncClient:
    """A client whose requests reach the app on ``port`` (None: on no port of the app's)."""
    transport = httpx.ASGITransport(app=ported_app(), client=(peer, 40000))
    host = "service" if port is None else f"service:{port}"
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


async def client_of(client: httpx.AsyncClient, headers: list[tuple[str, str]]) -> str:
    answer = await client.get("/users/who", headers=headers)
    assert answer.status_code == 200
    return str(answer.json()["client"])


@pytest.mark.parametrize("port", [PUBLIC, None], ids=["public", "neither"])
@pytest.mark.parametrize("path", ["/internal/users/42/token-state", "/metrics", "/internal"])
async def test_the_internal_routes_are_not_on_the_public_port(port, path):
    async with on(port) as client:
        refused = await client.get(path)
        unknown = await client.get("/no-such-path")
    # Not there at all: the answer of a path that does not exist, in the one error shape.
    assert refused.status_code == unknown.status_code == 404
    assert (
        error_of(refused)
        == error_of(unknown)
        == {
            "code": "not_found",
            "message": "Not Found",
            "details": None,
        }
    )


async def test_the_internal_port_serves_every_route():
    async with on(INTERNAL) as client:
        assert (await client.get("/internal/users/42/token-state")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/users/who")).json() == {"client": PEER, "port": INTERNAL}


@pytest.mark.parametrize(
    "headers,client",
    [
        ([], PEER),
        ([("X-Real-IP", CLIENT)], CLIENT),
        ([("X-Real-IP", "2001:db8::7")], "2001:db8::7"),
        ([("X-Real-IP", f" {CLIENT} ")], CLIENT),
        ([("X-Forwarded-For", CLIENT)], PEER),  # the gateway's word is X-Real-IP alone
        ([("X-Real-IP", "not an address")], PEER),
        ([("X-Real-IP", f"{CLIENT}, 198.51.100.1")], PEER),
        ([("X-Real-IP", CLIENT), ("X-Real-IP", "198.51.100.1")], PEER),  # not nginx's
    ],
    ids=["none", "x-real-ip", "ipv6", "spaces", "forwarded-for", "garbage", "list", "twice"],
)
async def test_on_the_public_port_the_client_is_the_gateways_x_real_ip(headers, client):
    async with on(PUBLIC) as public:
        assert await client_of(public, headers) == client


@pytest.mark.parametrize("port", [INTERNAL, None], ids=["internal", "neither"])
async def test_elsewhere_the_client_is_the_peer_whatever_the_headers_say(port):
    forged = [("X-Real-IP", CLIENT), ("X-Forwarded-For", CLIENT), ("Forwarded", f"for={CLIENT}")]
    async with on(port) as client:
        assert await client_of(client, forged) == PEER


async def test_a_service_app_refuses_the_internal_routes_on_its_public_port_with_a_request_id():
    settings = ServiceSettings(
        service_name="unit", port=PUBLIC, internal_port=INTERNAL, jwt_secret=SecretStr(SECRET)
    )
    app = create_service_app(settings, title="unit", routers=[])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://service:{PUBLIC}") as c:
        refused = await c.get("/metrics")
    async with httpx.AsyncClient(transport=transport, base_url=f"http://service:{INTERNAL}") as c:
        served = await c.get("/metrics")
    assert refused.status_code == 404 and error_of(refused)["code"] == "not_found"
    assert refused.headers["X-Request-ID"]  # answered inside the request's context, logged
    assert served.status_code == 200 and "http_requests_total" in served.text


async def test_one_server_answers_on_both_ports_of_a_service_and_no_forwarded_header_moves_it():
    settings = ServiceSettings(port=free_port(), internal_port=free_port())
    server = server_for(ported_app(settings.port, settings.internal_port))
    task = asyncio.create_task(server.serve(sockets=listening_sockets(settings)))
    forged = [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "https")]
    try:
        await eventually(lambda: asyncio.sleep(0, result=server.started), timeout=15)
        async with httpx.AsyncClient() as client:
            for port in (settings.port, settings.internal_port):
                answer = await client.get(f"http://127.0.0.1:{port}/users/who", headers=forged)
                assert answer.json() == {"client": "127.0.0.1", "port": port}
            public = f"http://127.0.0.1:{settings.port}"
            named = await client.get(f"{public}/users/who", headers={"X-Real-IP": CLIENT})
            assert named.json()["client"] == CLIENT
            refused = await client.get(f"{public}/internal/users/42/token-state")
            assert refused.status_code == 404
            inside = f"http://127.0.0.1:{settings.internal_port}/internal/users/42/token-state"
            assert (await client.get(inside)).status_code == 200
    finally:
        server.should_exit = True
        await task
