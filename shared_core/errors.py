"""Domain errors: a rule's refusal, said without HTTP.

Domain and use-case code raises these; ``shared_runtime.errors`` answers them in the one error
shape, with the status its kind gives (the one map from kinds to statuses). A service names
its own refusals as subclasses with a ``code``::

    class OutOfStock(Conflict):
        code = "out_of_stock"

    raise OutOfStock("Only 2 of Kettle available.", {"available": 2})
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal: ``code`` names it on the wire, ``message`` says it to a person, ``details``
    holds what a client may act on."""

    code = "error"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class Invalid(DomainError):
    """The input breaks a rule (422)."""

    code = "validation_error"


class Unauthenticated(DomainError):
    """Who is asking is not known, or no longer (401)."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Who is asking may not do this (403)."""

    code = "forbidden"


class NotFound(DomainError):
    """There is no such thing (404)."""

    code = "not_found"


class Conflict(DomainError):
    """It cannot be done in the state things are in (409)."""

    code = "conflict"


class Throttled(DomainError):
    """Too many attempts; try again after ``retry_after_s`` (429)."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int, *, code: str | None = None) -> None:
        super().__init__(message, {"retryAfterSeconds": retry_after_s}, code=code)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """Something this depends on does not answer now; try again shortly (503)."""

    code = "service_unavailable"
