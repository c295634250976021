"""Keyset pagination: opaque cursors over (sort timestamp, id) and page-size rules."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after which a page starts, in ``(sort_key DESC, id DESC)`` order."""

    sort_key: datetime
    id: str

    def encode(self) -> str:
        return encode_cursor(self.sort_key, self.id)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a client asked for; hashable so DataLoaders can key on it."""

    first: int
    after: Cursor | None


def encode_cursor(sort_key: datetime, row_id: str) -> str:
    raw = f"{sort_key.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """Parse a cursor this service issued; anything else is a clear INVALID error."""
    invalid = DomainError(
        ErrorCode.INVALID, "'after' is not a cursor issued by this API", ("after",)
    )
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _, row_id = raw.partition("|")
        sort_key = datetime.fromisoformat(stamp)
        parsed_id = str(uuid.UUID(row_id))
        # Our cursors are UTC times PostgreSQL stored; anything it could not store is forged.
        if sort_key.tzinfo is None or not 1 < sort_key.astimezone(UTC).year < 9999:
            raise invalid
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise invalid from None
    return Cursor(sort_key, parsed_id)


def page_request(first: int | None, after: str | None) -> PageRequest:
    """Validate ``first`` (default 20, at most 100: a larger value is an error, not a cap)."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED if size > MAX_PAGE_SIZE else ErrorCode.INVALID,
            f"'first' must be between 0 and {MAX_PAGE_SIZE}, got {size}",
            ("first",),
        )
    return PageRequest(size, decode_cursor(after) if after is not None else None)


def parse_id(value: str, field: str = "id") -> str:
    """A UUID in canonical text form; a malformed id is a user error, never a 500."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise DomainError(ErrorCode.INVALID, f"{value!r} is not a valid id", (field,)) from None
