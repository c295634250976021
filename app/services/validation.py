"""Input checks that collect every problem of a request, so a client can fix them all at once."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError, DomainErrors
from app.domain.limits import (
    JSON_MAX_BYTES,
    JSON_MAX_DEPTH,
    JSON_NESTING_MAX,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
)
from app.domain.text import encodable, storable

JsonPath = tuple[str | int, ...]


class Problems:
    """Accumulates DomainErrors; ``raise_if_any`` ends the operation before anything is written."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, field: str, problem: str, code: ErrorCode = ErrorCode.INVALID) -> None:
        """Record ``problem`` about ``field`` (a snake_case input name)."""
        label = field.replace("_", " ")
        self.errors.append(DomainError(code, f"{label} {problem}", (field,) if field else ()))

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainErrors(self.errors)

    def text(
        self,
        field: str,
        value: str | None,
        *,
        required: bool = False,
        min_length: int = 0,
        max_length: int,
    ) -> str | None:
        """The trimmed text (None when empty and optional), or None after recording a problem."""
        if value is None:
            if required:
                self.add(field, "is required")
            return None
        if not storable(value):
            self.add(field, "must be valid Unicode without NUL characters")
            return None
        trimmed = value.strip()
        if not trimmed and not required and min_length == 0:
            return None
        if not min_length <= len(trimmed) <= max_length:
            if min_length and max_length:
                bounds = f"between {min_length} and {max_length} characters"
            else:
                bounds = f"at most {max_length} characters"
            if required and not trimmed:
                self.add(field, "must not be blank")
            else:
                self.add(field, f"must be {bounds} after trimming (got {len(trimmed)})")
            return None
        return trimmed

    def integer(self, field: str, value: int, minimum: int, maximum: int | None = None) -> int:
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            relation = f"between {minimum}{upper}" if maximum is not None else f">= {minimum}"
            self.add(field, f"must be {relation} (got {value})")
        return value

    def uuid(self, field: str, value: str | None) -> uuid.UUID | None:
        if value is None:
            return None
        try:
            return uuid.UUID(value)
        except (ValueError, AttributeError, TypeError):
            self.add(field, f"is not a valid id: {str(value)[:64]!r}")
            return None

    def json_object(self, field: str, value: Any) -> dict[str, Any] | None:
        """A JSON object within the size and depth limits of domain.md."""
        return value if self.serialized_json_object(field, value) is not None else None

    def serialized_json_object(self, field: str, value: Any) -> str | None:
        """``json_object``'s checks, answering with the JSON text they measured, for a caller
        that stores it: the object is serialized once."""
        if not isinstance(value, dict):
            self.add(field, "must be a JSON object")
            return None
        problem = _json_problem(value)
        if problem is None:
            text = json.dumps(value, ensure_ascii=False)
            size = len(text.encode())
            if size <= JSON_MAX_BYTES:
                return text
            problem = f"is {size} bytes serialized; the limit is {JSON_MAX_BYTES}"
        self.add(field, problem)
        return None


def _json_problem(value: Any) -> str | None:
    """Depth beyond the limit, or what PostgreSQL's jsonb refuses (NUL, NaN, infinities).

    Iterative, so a hostile nesting depth cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > JSON_MAX_DEPTH:
                return f"is nested deeper than {JSON_MAX_DEPTH} levels"
            if isinstance(item, dict):
                if not all(storable(k) for k in item):
                    return "must be valid Unicode without NUL characters"
                children = item.values()
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and not storable(item):
            return "must be valid Unicode without NUL characters"
        elif isinstance(item, float) and not math.isfinite(item):
            return "must not contain NaN or infinite numbers"
    return None


def unencodable(value: Any) -> tuple[JsonPath, str] | None:
    """The first string (or object key) in a parsed JSON value that is not valid Unicode,
    with where it sits, or None: the one guard a request's text passes before it can reach
    PostgreSQL. Iterative, so depth cannot exhaust the stack; paths are built for arrays
    and objects only, so a large body of plain strings costs little more than a glance."""
    if isinstance(value, str):
        return None if encodable(value) else ((), value)
    containers: list[tuple[Any, JsonPath]] = [(value, ())]
    while containers:
        item, path = containers.pop()
        if isinstance(item, dict):
            pairs: Iterable[tuple[str | int, Any]] = item.items()
        elif isinstance(item, list):
            pairs = enumerate(item)
        else:
            continue
        for key, child in pairs:
            if isinstance(key, str) and not encodable(key):
                return (*path, key), key
            if isinstance(child, str):
                if not encodable(child):
                    return (*path, key), child
            elif isinstance(child, dict | list):
                containers.append((child, (*path, key)))
    return None


def unencodable_message(text: str) -> str:
    """What is wrong with ``text``, which ``encodable`` refused (the code point, never the
    text: it is the client's)."""
    bad = next(c for c in text if not encodable(c))
    return (
        f"is not valid Unicode: it holds a lone surrogate (U+{ord(bad):04X}); send text as"
        " UTF-8, where a surrogate escape only stands as half of a pair"
    )


def nesting_exceeds(value: Any, limit: int = JSON_NESTING_MAX) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit``: one level at a
    time, iteratively, so depth cannot exhaust the stack."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, dict | list):
                    deeper.append(child)
        level = deeper
    return False


def describe_path(path: JsonPath) -> str:
    """``events[0].metadata.note``: a JSON path as a client reads it (a key that is not
    valid Unicode written as its escape, so the message itself can be sent)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part.encode("utf-8", "backslashreplace").decode()
            text += f".{name}" if text else name
    return text


def instant_problem(value: datetime) -> str | None:
    """Why ``value`` cannot be stored as a timestamptz and read back, or None.

    Both PostgreSQL and Python must hold the instant once its UTC offset is applied:
    ``9999-12-31T23:59:59-12:00`` parses, but its UTC instant is in year 10000."""
    if value.utcoffset() is None:
        return "must carry a time zone"
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not TIMESTAMP_MIN <= instant <= TIMESTAMP_MAX:
        return (
            f"must lie between {_iso(TIMESTAMP_MIN)} and {_iso(TIMESTAMP_MAX)} once its UTC"
            f" offset is applied (got {value.isoformat()})"
        )
    return None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def require_id(field: str, value: str) -> uuid.UUID:
    """Parse an id argument on its own: a malformed one ends the operation at once."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise DomainError(
            ErrorCode.INVALID, f"{str(value)[:64]!r} is not a valid id", (field,)
        ) from None


def not_null(problems: Problems, changes: dict[str, Any], fields: Iterable[str]) -> None:
    """In a partial update, an explicit null on a non-nullable field is an error."""
    for field in fields:
        if field in changes and changes[field] is None:
            problems.add(field, "cannot be null")
