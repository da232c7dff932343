"""The field types and limits every service's requests use: text that says something, strict
numbers, money within bounds. One set, so the same input is refused the same way everywhere.

- ``Line``: one line of required text. Surrounding whitespace is dropped; refused when nothing
  visible is left (only spaces, Unicode separators, control or format characters such as
  U+200B), or when it holds a control character. ``OptionalLine``: the same, or absent.
- ``PersonName``: a ``Line`` that holds no e-mail address, web address or line separator (it
  is greeted in e-mails the shop sends).
- ``Paragraph``: free text (may be empty); tabs and line breaks allowed, other control
  characters not.
- ``Quantity``, ``Count``: JSON integers only (``true``, ``1.0`` and ``"1"`` are refused), from
  1 and from 0.
- ``Money``: a positive decimal with at most 2 places, at most ``MAX_PRICE``.

Lengths and maxima go on the field: ``name: Line = Field(max_length=200)``.

Every string of every request body is also checked for control characters by the models'
base class (``shared_events.events.CamelModel``), and every path and query string by
``shared_runtime.observability.RequestContextMiddleware``.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt

# Documented limits (docs/operations.md, "Limits"): checked before the database sees a value,
# and small enough that no total can overflow NUMERIC(12,2) (99 x 100 x 1,000,000 < 10^10).
MAX_PRICE = Decimal("1000000.00")
MAX_LINE_QUANTITY = 99
MAX_CART_LINES = 100
MAX_ORDER_TOTAL = Decimal("100000000.00")

_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_ALLOWED_CONTROLS = frozenset("\t\n\r")


# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F: a regex finds one at C speed.
_CONTROLS = {
    allowed: re.compile(
        "["
        + "".join(
            f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in allowed
        )
        + "]"
    )
    for allowed in (frozenset(), _ALLOWED_CONTROLS)
}


def control_character(value: str, allowed: frozenset[str] = _ALLOWED_CONTROLS) -> str | None:
    """The first control character (Unicode category Cc) of ``value`` not in ``allowed``
    (nothing or tab, line feed and carriage return)."""
    found = _CONTROLS[allowed].search(value)
    return found.group() if found else None


def refuse_control_characters(value: str, allowed: frozenset[str] = _ALLOWED_CONTROLS) -> str:
    char = control_character(value, allowed)
    if char is not None:
        raise ValueError(f"must not contain control characters (U+{ord(char):04X})")
    return value


def _line(value: str) -> str:
    refuse_control_characters(value, frozenset())
    value = value.strip()
    if all(unicodedata.category(char) in _INVISIBLE for char in value):
        raise ValueError("must not be blank")
    return value


Line = Annotated[str, AfterValidator(_line)]

# What no person's name holds, and what would make one a link or an address in a message the
# shop sends (a welcome e-mail greets the name a stranger typed): an e-mail address, a URL
# (a scheme, "www.", a domain such as "example.com" or "evil.co/x", an IPv4 address), and the
# Unicode line and paragraph separators (the other line breaks are control characters).
_NOT_IN_A_NAME = re.compile(
    r"@|://|www\.|[\w-]\.[a-z]{2,63}\b|\d{1,3}(?:\.\d{1,3}){3}|[\u2028\u2029]", re.IGNORECASE
)


def _person_name(value: str) -> str:
    value = _line(value)
    if _NOT_IN_A_NAME.search(value):
        raise ValueError("must be a name: no e-mail address, web address or line break")
    return value


# A person's name (an account's, an address's): a Line that is no link and no address.
PersonName = Annotated[str, AfterValidator(_person_name)]


def _optional_line(value: str | None) -> str | None:
    if value is None:
        return None
    if all(unicodedata.category(char) in _INVISIBLE for char in value):
        refuse_control_characters(value)  # blank (tabs too) is absent; NUL and the like, not
        return None
    return _line(value)


# Like Line, but nothing visible means absent (None) rather than refused.
OptionalLine = Annotated[str | None, AfterValidator(_optional_line)]
Paragraph = Annotated[str, AfterValidator(refuse_control_characters)]
Quantity = Annotated[StrictInt, Field(ge=1)]
Count = Annotated[StrictInt, Field(ge=0)]
Money = Annotated[
    Decimal,
    Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=2, description='e.g. "9.90"'),
]


# Query-string fields that may hold personal data (an e-mail searched for, a name, a link's
# token): what the gateway's access log and the services' spans record of them is masked
# (nginx/render.py builds its pattern from this list; ``redact_query`` is the Python side).
# Matched anywhere in a field's name, so ``userEmail`` and ``fullName`` are covered too.
PERSONAL_QUERY_FIELDS = ("search", "email", "name", "phone", "address", "token", "password")
REDACTED_QUERY = "[redacted]"
_PERSONAL_QUERY = re.compile(
    rf"(?:^|&)[^=&]*(?:{'|'.join(PERSONAL_QUERY_FIELDS)})[^=&]*(?:=|&|$)|(?:^|&)[^=&]*%[^=&]*=",
    re.IGNORECASE,
)


def redact_query(query: str) -> str:
    """A query string as it may be recorded: the whole of it masked when any field in it may be
    personal (by its name, or a name hidden by percent-encoding), else as it is."""
    return REDACTED_QUERY if _PERSONAL_QUERY.search(query) else query


def redact_url(url: str) -> str:
    """A URL (or a path with its query) with ``redact_query`` applied to its query."""
    base, sep, query = url.partition("?")
    return f"{base}{sep}{redact_query(query)}" if sep else url
