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

# status, payload (JSON; a str is sent as plain text; None: no body), headers
Reply = tuple[int, Any, dict[str, str]]


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
                content_type, data = "", b""
                if isinstance(payload, str):  # plain text, as Consul's errors are
                    content_type, data = "text/plain; charset=utf-8", payload.encode()
                elif payload is not None:
                    content_type, data = "application/json", json.dumps(payload).encode()
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
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


class OtlpReceiver(FakeApi):
    """An OpenTelemetry collector's OTLP/HTTP traces endpoint: decodes each export (protobuf,
    as the SDK's exporter sends it) into spans, and answers as the collector does (200, an
    empty ExportTraceServiceResponse)."""

    def answer(self, request: dict[str, Any]) -> Reply:
        return (200, None, {}) if request["path"] == "/v1/traces" else (404, None, {})

    def spans(self) -> list[dict[str, Any]]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for request in list(self.requests):
            if request["path"] != "/v1/traces":
                continue
            export = ExportTraceServiceRequest.FromString(request["body"])
            for resource_spans in export.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            {
                                "service": attributes.get("service.name"),
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex() or None,
                                "links": [link.span_id.hex() for link in span.links],
                                "attributes": {
                                    a.key: a.value.string_value for a in span.attributes
                                },
                            }
                        )
        return found
