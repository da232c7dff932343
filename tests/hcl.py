"""A reader of the HCL that Consul's files here are written in: attributes and blocks.

Enough for consul.d/server.hcl and the ACL rules of consul.d/acl-bootstrap.sh, so the tests check
what Consul will read rather than search the text: ``name = value`` (a string, number, bool or
list of them) and blocks ``name ["label" ...] { ... }``. A labelled block is read as
``{name: {label: body}}``; a repeated unlabelled one merges into one dict.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w-]*)|(?P<punct>[{}\[\]=,])",
    re.S,
)


def tokens(text: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"HCL: cannot read {text[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup
        if kind == "string":
            found.append(("value", json.loads(match.group())))
        elif kind == "number":
            found.append(
                ("value", float(match.group()) if "." in match.group() else int(match.group()))
            )
        elif kind == "word":
            word = match.group()
            found.append(("value", word == "true") if word in ("true", "false") else ("word", word))
        elif kind == "punct":
            found.append(("punct", match.group()))
    return found


def loads(text: str) -> dict[str, Any]:
    items = tokens(text)
    body, end = _body(items, 0)
    if end != len(items):
        raise ValueError("HCL: a '}' without its '{'")
    return body


def _body(items: list[tuple[str, Any]], i: int) -> tuple[dict[str, Any], int]:
    body: dict[str, Any] = {}
    while i < len(items) and items[i] != ("punct", "}"):
        kind, name = items[i]
        if kind != "word":
            raise ValueError(f"HCL: expected a name, found {name!r}")
        i += 1
        if items[i] == ("punct", "="):
            value, i = _value(items, i + 1)
            if name in body:
                raise ValueError(f"HCL: {name} set twice")
            body[name] = value
            continue
        labels = []
        while items[i][0] == "value" and isinstance(items[i][1], str):
            labels.append(items[i][1])
            i += 1
        if items[i] != ("punct", "{"):
            raise ValueError(f"HCL: expected '{{' after {name}")
        block, i = _body(items, i + 1)
        i += 1  # the closing brace
        target = body.setdefault(name, {})
        for label in labels:
            target = target.setdefault(label, {})
        duplicated = set(target) & set(block)
        if duplicated:
            raise ValueError(f"HCL: {name} {labels} sets {duplicated} twice")
        target.update(block)
    return body, i


def _value(items: list[tuple[str, Any]], i: int) -> tuple[Any, int]:
    kind, value = items[i]
    if kind == "value":
        return value, i + 1
    if items[i] == ("punct", "["):
        values, i = [], i + 1
        while items[i] != ("punct", "]"):
            item, i = _value(items, i)
            values.append(item)
            if items[i] == ("punct", ","):
                i += 1
        return values, i + 1
    raise ValueError(f"HCL: expected a value, found {value!r}")
