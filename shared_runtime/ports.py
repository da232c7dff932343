"""A service's two ports: what each serves, and who the client of a request is.

Every service process listens on two ports, served by one uvicorn server
(``shared_runtime.service.serve`` on the sockets made here):

- the **public port**, which the gateway reaches: the API. The client is the one the gateway
  names in ``X-Real-IP`` (nginx sets it from the connection, or from the X-Forwarded-For of a
  proxy it trusts). The internal routes (``/internal/...``) and ``/metrics`` are not there:
  they answer 404, as any unknown path does.
- the **internal port**, which the other services reach (and Consul's check, and
  Prometheus): every route. Nobody there speaks for anyone else: the client is the
  connection's peer, whatever ``X-Real-IP`` or ``X-Forwarded-For`` say.

Which port a request came in on is the local address of its connection (ASGI's
``scope["server"]``, which uvicorn takes from the socket), never anything the request says. A
request on neither port (an in-process test client, the app under another server) gets the
least of both: no internal routes, and its peer as its client. Who may open a connection to
which port is the network's to enforce (Kubernetes NetworkPolicies, k8s/README.md).
"""

from __future__ import annotations

import ipaddress
import socket

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_runtime.errors import error_response
from shared_runtime.settings import ServiceSettings

# Served on the internal port only: the routes other services call, and the metrics.
INTERNAL_ONLY = ("/internal", "/metrics")


class PortsMiddleware:
    """Pure ASGI middleware: refuses the internal routes on any port but the internal one, and
    makes ``scope["client"]`` the request's client by the rule above (so every reader of
    ``request.client``, ``client_address`` first, sees the same)."""

    def __init__(self, app: ASGIApp, *, public_port: int, internal_port: int) -> None:
        self.app = app
        self.public_port = public_port
        self.internal_port = internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        port = (scope.get("server") or (None, None))[1]
        if port != self.internal_port:
            if _internal_only(scope["path"]):
                # The same answer as an unknown path: the public port does not tell they exist.
                await error_response(404, "not_found", "Not Found")(scope, receive, send)
                return
            forwarded = _real_ip(scope) if port == self.public_port else None
            if forwarded is not None:
                scope["client"] = (forwarded, 0)
        await self.app(scope, receive, send)


def client_address(request: Request) -> str:
    """The address of the request's client (PortsMiddleware's rule), or "-" when unknown."""
    return request.client.host if request.client else "-"


def _internal_only(path: str) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in INTERNAL_ONLY)


def _real_ip(scope: Scope) -> str | None:
    """The gateway's X-Real-IP: one header holding one address, else nothing (nginx sends
    exactly one; anything else did not come from it)."""
    values = [value for name, value in scope.get("headers", []) if name == b"x-real-ip"]
    if len(values) != 1:
        return None
    try:
        return str(ipaddress.ip_address(values[0].decode("latin-1").strip()))
    except ValueError:
        return None


def listening_sockets(settings: ServiceSettings) -> list[socket.socket]:
    """The public port's socket, then the internal port's, both bound on ``settings.host``.

    Bound before the app starts, so a port another process holds stops the start at once."""
    sockets: list[socket.socket] = []
    try:
        for port in (settings.port, settings.internal_port):
            sockets.append(_bound(settings.host, port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    # A restarted service binds again at once, while its old connections are in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
