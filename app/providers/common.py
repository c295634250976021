"""What every adapter shares: the translation result, payload errors, field readers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.domain.limits import JSON_NESTING_MAX
from app.services.ingestion.events import NewEvent
from app.services.replies import ProviderClassification
from app.services.validation import (
    describe_path,
    instant_problem,
    nesting_exceeds,
    unencodable,
    unencodable_message,
)


class PayloadError(Exception):
    """The payload lacks a required field or has one of the wrong shape (answered 400)."""


@dataclass(slots=True)
class Translation:
    events: list[NewEvent] = field(default_factory=list)
    classifications: list[ProviderClassification] = field(default_factory=list)
    ignored: int = 0


def require(payload: Any, name: str) -> Any:
    if not isinstance(payload, dict):
        raise PayloadError("the body must be a JSON object")
    value = payload.get(name)
    if value is None or value == "":
        raise PayloadError(f"missing required field '{name}'")
    return value


def optional_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise PayloadError(f"field '{name}' must be a string")
    return str(value)


def parse_time(value: Any, name: str, default: datetime) -> datetime:
    """An ISO 8601 timestamp that PostgreSQL and Python both hold; one without a zone is
    taken as UTC."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise PayloadError(f"field '{name}' must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"field '{name}' is not an ISO 8601 timestamp: {value[:40]!r}") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    problem = instant_problem(parsed)
    if problem is not None:
        raise PayloadError(f"field '{name}' {problem}")
    return parsed


def json_in_text(text: str, name: str) -> Any:
    """JSON a provider sends inside a string field, held to what a request body is held to:
    parseable, nested at most JSON_NESTING_MAX deep, valid Unicode throughout."""
    too_deep = f"field '{name}' holds JSON nested deeper than {JSON_NESTING_MAX} levels"
    try:
        value = json.loads(text)
    except RecursionError:
        raise PayloadError(too_deep) from None
    except ValueError:
        raise PayloadError(f"field '{name}' holds no valid JSON") from None
    if nesting_exceeds(value):
        raise PayloadError(too_deep)
    found = unencodable(value)
    if found is not None:
        path, bad = found
        raise PayloadError(f"field '{describe_path((name, *path))}' {unencodable_message(bad)}")
    return value


def parse_step(value: Any, name: str, offset: int = 0) -> int | None:
    """A step number given as an int or a numeric string; ``offset`` for zero-based indexes."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(f"field '{name}' must be a number")
    try:
        return int(str(value).strip()) + offset
    except ValueError:
        raise PayloadError(f"field '{name}' must be a number, not {str(value)[:20]!r}") from None
