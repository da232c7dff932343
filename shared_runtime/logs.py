"""Structured JSON logs with the service name, the request id and secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from shared_core.context import trace_ids

REDACTED = "[REDACTED]"
# Secrets, and the personal data a shop holds (e-mail, phone, name, address): never logged.
_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|api[_-]?key|card|cvc|cvv|pan|payment_?method"
    r"|e-?mail|phone|address|recipient|full_?name",
    re.IGNORECASE,
)
# Inside free text (messages, tracebacks): bearer tokens, JWTs, card-like digit runs, e-mail
# addresses, phone numbers, and the values that exceptions quote (pydantic's input_value,
# SQL parameters), which can be anything a customer sent.
_SECRET_TEXT = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9\-_.=]+"),
    re.compile(r"eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*"),
    # 13-19 digits, maybe grouped by spaces or dashes, not part of a longer id (a UUID).
    re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])"),
    re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"),
    re.compile(r"(?<![\w+])\+\d[\d -]{6,18}\d(?!\w)"),
    re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.MULTILINE),
    re.compile(r"\[parameters: [^\n]*"),
]


def redact(value: Any) -> Any:
    """``value`` with secrets and personal data masked: under the keys that name them, and
    in free text (the log lines' rule; the back office shows parked bodies by it too)."""
    if isinstance(value, str):
        for pattern in _SECRET_TEXT:
            value = pattern.sub(REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEYS.search(key))


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: secrets and personal data never reach a log line."""
    return {k: (REDACTED if _is_secret_key(k) else redact(v)) for k, v in event_dict.items()}


def add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the trace and span the line was written in, so a log search and the
    tracing UI lead to each other."""
    for key, value in trace_ids().items():
        event_dict.setdefault(key, value)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def formatter(service_name: str, json: bool = True) -> logging.Formatter:
    """Renders structlog and standard-library records alike: one JSON object per record."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service_name),
            renderer,
        ],
    )


def configure_logging(service_name: str, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library's logging to one JSON line per record."""
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(service_name, json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log is replaced by ours (one line per request, with the request id).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _add_service(service_name: str) -> Any:
    def add_service(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service_name)
        return event_dict

    return add_service
