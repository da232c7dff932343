"""The shared field types: blank, invisible and control-character text is refused, numbers are
strict, money is bounded; and every service's request bodies use them."""

from __future__ import annotations

import importlib
import json
import typing
from decimal import Decimal
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shared_core.fields import (
    MAX_LINE_QUANTITY,
    MAX_PRICE,
    Count,
    Line,
    Money,
    OptionalLine,
    Paragraph,
    PersonName,
    Quantity,
)
from shared_events.events import CamelModel
from shared_runtime.registry import SERVICES

BLANKS = ["", "   ", "\t", "\u00a0", "\u3000", "\u200b\u200d", "\u2028", "\ufeff", " \u2060 "]
CONTROLS = ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\x85b"]


class Form(CamelModel):
    name: Line = Field(max_length=20)
    note: OptionalLine = Field(default=None, max_length=20)
    text: Paragraph = Field(default="", max_length=50)
    quantity: Quantity = Field(default=1, le=MAX_LINE_QUANTITY)
    stock: Count = Field(default=0, le=10)
    price: Money = Decimal("1.00")


def refused(**fields: Any) -> list[str]:
    try:
        Form.model_validate_json(json.dumps({"name": "ok"} | fields))
    except ValidationError as exc:
        return [str(e["msg"]) for e in exc.errors()]
    return []


@pytest.mark.parametrize("blank", BLANKS)
def test_required_text_with_nothing_visible_is_refused_and_optional_text_is_absent(blank):
    assert refused(name=blank)
    assert Form.model_validate({"name": "x", "note": blank}).note is None


@pytest.mark.parametrize("text", CONTROLS)
def test_control_characters_are_refused_in_every_kind_of_text(text):
    assert any("control characters" in m for m in refused(name=text))
    assert any("control characters" in m for m in refused(note=text))
    assert any("control characters" in m for m in refused(text=text))


def test_text_is_trimmed_and_paragraphs_keep_their_line_breaks():
    form = Form.model_validate({"name": "  Ada\u00a0L. ", "text": "one\n\ttwo\r\n"})
    assert form.name == "Ada\u00a0L." and form.text == "one\n\ttwo\r\n"
    assert refused(name="a\nb")  # one line


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "1", None, [1]])
def test_counts_are_integers_only(value):
    assert refused(quantity=value) and refused(stock=value)


def test_numbers_are_bounded():
    assert refused(quantity=0) and refused(quantity=MAX_LINE_QUANTITY + 1) and refused(stock=-1)
    assert not refused(quantity=MAX_LINE_QUANTITY, stock=10)
    assert refused(price=str(MAX_PRICE + Decimal("0.01")))
    assert refused(price="0") and refused(price="1.001") and refused(price="NaN")
    assert refused(price=True)
    assert not refused(price=str(MAX_PRICE))


def request_models() -> list[tuple[str, type[BaseModel]]]:
    """Every request body of every service, found in the routers of its api module."""
    found = []
    for package in SERVICES:
        api = importlib.import_module(f"{package}.api")
        routers = [v for v in vars(api).values() if isinstance(v, APIRouter)]
        for route in (r for router in routers for r in router.routes):
            if isinstance(route, APIRoute) and route.body_field is not None:
                model = route.body_field.field_info.annotation
                if isinstance(model, type) and issubclass(model, BaseModel):
                    found.append((f"{package} {route.path}", model))
    return found


def string_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    fields = []
    for name, info in model.model_fields.items():
        types = typing.get_args(info.annotation) or (info.annotation,)
        for kind in types:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                fields += string_fields(kind, f"{prefix}{name}.")
            elif kind is str:
                fields.append((f"{prefix}{name}", info))
    return fields


# Fields whose text is not free text: credentials (checked, never stored as given) and values
# with a pattern or a validator of their own.
NOT_FREE_TEXT = {"email", "password", "current_password", "new_password", "currency", "country"}
NOT_FREE_TEXT |= {"token"}  # a link's, a credential checked by its signature


def test_every_free_text_field_of_every_request_uses_the_shared_types():
    models = request_models()
    assert len(models) >= 10
    unchecked = []
    for where, model in models:
        for name, info in string_fields(model):
            shared = any(
                getattr(m, "func", None)
                in (
                    Line.__metadata__[0].func,
                    Paragraph.__metadata__[0].func,
                    PersonName.__metadata__[0].func,
                )
                or getattr(m, "func", None) is OptionalLine.__metadata__[0].func
                for m in info.metadata
            )
            patterned = any(getattr(m, "pattern", None) for m in info.metadata)
            if not (shared or patterned or name.rsplit(".", 1)[-1] in NOT_FREE_TEXT):
                unchecked.append(f"{where}: {model.__name__}.{name}")
    assert unchecked == []


@pytest.mark.parametrize(
    "name",
    ["Ada Lovelace", "J.R.R. Tolkien", "María-José O'Neill", "李小龙", "St. John", "Jr. Smith"],
)
def test_a_persons_name_may_be_any_name(name):
    assert TypeAdapter(PersonName).validate_python(f"  {name} ") == name


@pytest.mark.parametrize(
    "name",
    [
        "Visit evil.com now",
        "see bit.ly/x",
        "http://x",
        "Hxxp//a://b",
        "www.example",
        "ada@example",
        "Call 10.0.0.1",
        "Ada\u2028Click here",
        "Ada\u2029Click",
        "Ada\nClick",
        "Dr.House",
    ],
)
def test_a_name_that_is_a_link_an_address_or_two_lines_is_refused(name):
    with pytest.raises(ValidationError, match=r"must be a name|control characters"):
        TypeAdapter(PersonName).validate_python(name)
