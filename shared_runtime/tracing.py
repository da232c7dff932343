"""Distributed tracing with OpenTelemetry: one order is one trace, from the gateway's request
through every event of its saga.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (e.g. ``http://jaeger:4318``); then spans go
out over OTLP/HTTP in batches, sampled as ``OTEL_TRACES_SAMPLER`` / ``_ARG`` say (the SDK's
standard variables; default: every trace, or as the caller's ``traceparent`` decided).

What makes the spans, all from the OpenTelemetry instrumentations: FastAPI (a server span per
request, continuing the gateway's ``traceparent``), aiohttp (the peer calls, which carry it on),
SQLAlchemy (each statement), Redis (each command) and aio-pika (a producer span per publish, a
consumer span per delivery, the context in the message's headers). The outbox keeps the context
of the transaction that wrote an event, and the relay publishes it inside that context
(``shared_core.context``), so a consumer's span is a child of the span whose work emitted the
event, whenever the relay gets to it.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace

from shared_core.fields import redact_query, redact_url

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
_QUIET_URLS = "/health,/ready,/metrics"


def enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE))


def configure(service_name: str) -> Any:
    """Install the tracer provider and the library instrumentations once per process; returns
    the provider (to flush at shutdown), or None when tracing is off."""
    if not enabled():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # already configured in this process
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    return provider


# The attributes of a server span that hold the request's query string (the semantic
# conventions' old and new names).
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.query")


def _redact_request(span: Any, _scope: dict[str, Any]) -> None:
    """A server span records the URL without personal query fields (shared_core.fields):
    the spans go to Jaeger, which keeps them, and to whoever reads it."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            redacted = redact_query(value) if name == "url.query" else redact_url(value)
            if redacted != value:
                span.set_attribute(name, redacted)


def instrument_app(app: Any) -> None:
    if enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, excluded_urls=_QUIET_URLS, server_request_hook=_redact_request
        )


def instrument_engine(engine: Any) -> None:
    """Spans for the statements of an async SQLAlchemy engine."""
    if enabled():
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)


def client_trace_configs() -> list[Any]:
    """aiohttp trace configs for the peer client: a client span per call, context carried on."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config(url_filter=lambda url: redact_url(str(url)))]


def shutdown(provider: Any) -> None:
    if provider is not None:
        provider.force_flush(timeout_millis=2000)
