"""A local HTTP server standing in for an external API (SendGrid, Stripe, Twilio, Consul, ...).

It records every request as a dict (method, path, headers, body, and json or form when the
body is one) and answers what the subclass's ``answer`` returns, so each fake holds only what
its provider's API documents.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

Reply = tuple[int, Any, dict[str, str]]  # status, JSON payload (None: no body), headers


class FakeApi:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request: dict[str, Any] = {
                    "method": self.command,
                    "path": self.path,
                    "headers": self.headers,
                    "body": body,
                }
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/x-www-form-urlencoded"):
                    request["form"] = parse_qs(body.decode())
                elif body[:1] in (b"{", b"["):  # some clients send JSON without saying so
                    try:
                        request["json"] = json.loads(body)
                    except ValueError:  # JSON lines (a bulk body): left to the fake
                        pass
                fake.requests.append(request)
                status, payload, headers = fake.answer(request)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def answer(self, request: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
