"""A service's two ports: the public one, which the gateway reaches, and the internal one, which
the other services reach (their calls to each other, Consul's health check).

One process serves both: ``shared_runtime.service.serve`` runs one uvicorn server on the two
sockets made here, so both answer from the same app, state and connections.
"""

from __future__ import annotations

import socket

from shared_runtime.settings import ServiceSettings


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
