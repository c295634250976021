"""The database as the last guard: a constraint violation that slipped past validation becomes
the matching domain error, never a 500."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.exc import DBAPIError

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError


def constraint_name(exc: DBAPIError) -> str | None:
    """The violated constraint as asyncpg reports it."""
    cause = getattr(exc.orig, "__cause__", None)
    return getattr(cause, "constraint_name", None)


def sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )


def translate(exc: DBAPIError, known: Mapping[str, DomainError]) -> DomainError:
    """The domain error for a known constraint; otherwise a generic, safe INVALID."""
    name = constraint_name(exc)
    if name in known:
        return known[name]
    if sqlstate(exc) in {"23514", "23502", "22001", "22P02", "22021", "22P05"}:
        return DomainError(ErrorCode.INVALID, "the input breaks a rule of the data model")
    raise exc
