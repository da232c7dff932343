"""Message templates: files in ``templates/``, rendered with ``string.Template``."""

from __future__ import annotations

import dataclasses
import functools
import string
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


@functools.cache
def _load(template: str, channel: str) -> string.Template:
    return string.Template((TEMPLATES / f"{template}.{channel}.txt").read_text())


def render(template: str, channel: str, values: dict[str, str]) -> Rendered:
    """A template file's first line is the subject; the rest is the body.

    A value the template names but ``values`` lacks is a KeyError, never a blank."""
    subject, _, body = _load(template, channel).substitute(values).partition("\n")
    return Rendered(subject=subject.strip(), text=body.lstrip("\n"))
