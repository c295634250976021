"""Personalization: ``{{variable}}`` and ``{{variable|fallback}}`` in subjects, bodies and
messages, filled from an enrollment's metadata.

A deliberately small renderer: a placeholder names one metadata key, nothing is evaluated, no
attribute or index is followed, so a template can never run code or reach past the contact's
own variables. A Mustache library would accept sections and partials we do not want, and has
no ``|fallback``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_]{0,63})\s*(?:\|(?P<fallback>[^{}|]*))?\}\}"
)
_BRACES = re.compile(r"\{\{|\}\}")


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    fallback: str | None


class MalformedPlaceholder(ValueError):
    """A ``{{`` or ``}}`` that does not belong to a well-formed placeholder."""

    def __init__(self, position: int, excerpt: str) -> None:
        super().__init__(f"has a malformed placeholder at character {position + 1}: {excerpt!r}")
        self.position = position


def placeholders(template: str) -> list[Placeholder]:
    """Every placeholder of ``template``, in order; raises MalformedPlaceholder."""
    found: list[Placeholder] = []
    position = 0
    for match in _BRACES.finditer(template):
        if match.start() < position:
            continue
        placeholder = _PLACEHOLDER.match(template, match.start())
        if match.group() == "}}" or placeholder is None:
            raise MalformedPlaceholder(match.start(), template[match.start() : match.start() + 40])
        fallback = placeholder.group("fallback")
        found.append(Placeholder(placeholder.group("name"), _strip(fallback)))
        position = placeholder.end()
    return found


def required_variables(templates: Iterable[str | None]) -> set[str]:
    """The variables used without a fallback anywhere in ``templates``: a contact must have them."""
    return {p.name for t in templates if t for p in placeholders(t) if p.fallback is None}


def _strip(fallback: str | None) -> str | None:
    return None if fallback is None else fallback.strip()


def _value(metadata: Mapping[str, Any], name: str) -> str | None:
    """The contact's value as text; absent, null, blank, objects and lists count as no value."""
    value = metadata.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text.strip() else None


class MissingVariable(LookupError):
    """A placeholder without fallback whose variable the contact does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"variable {name!r} has no value and no fallback")
        self.name = name


@lru_cache(maxsize=1024)
def _compiled(template: str) -> tuple[str | Placeholder, ...]:
    """``template`` as text and placeholders in order, parsed once per distinct text: a batch
    renders the same step for hundreds of contacts."""
    placeholders(template)  # refuses malformed text before anything is substituted
    parts: list[str | Placeholder] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[position : match.start()])
        parts.append(Placeholder(match.group("name"), _strip(match.group("fallback"))))
        position = match.end()
    parts.append(template[position:])
    return tuple(part for part in parts if part != "")


def render(template: str, metadata: Mapping[str, Any]) -> str:
    """``template`` with every placeholder replaced by the contact's value, else its fallback."""
    out: list[str] = []
    for part in _compiled(template):
        if isinstance(part, str):
            out.append(part)
            continue
        value = _value(metadata, part.name)
        if value is None:
            if part.fallback is None:
                raise MissingVariable(part.name)
            value = part.fallback
        out.append(value)
    return "".join(out)
