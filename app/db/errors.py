"""Which exceptions mean "the database is unavailable" (answered 503), as opposed to a bug.

Only failures of reaching PostgreSQL count: a refused or dropped connection, a server shutting
down or starting up, a pool with no free connection. A bad statement, a constraint violation
or a statement timeout is not unavailability and keeps its own handling. A missing table is
told apart (``is_schema_missing``): the database was never migrated, and the HTTP edge says so
in a 503 of its own rather than a 500.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, SQLAlchemyError)
"""Everything a statement sent from a background task may raise from the database side: such a
task logs it and carries on (or decides with what it has) rather than dying."""

# 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now; class 08 is connection
# exceptions (08003 connection_does_not_exist, 08006 connection_failure, ...).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_CONNECTION_CLASS = "08"
_CLOSED_CONNECTION_HINTS = ("connection is closed", "connection was closed")
_UNDEFINED_TABLE = "42P01"


def _by_itself(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeoutError):  # the pool had no connection within pool_timeout_s
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OSError):
        # Socket failures (refused, reset, unreachable, connect timeout) carry no file name;
        # an OSError about a file does, and is not the database's absence.
        return exc.filename is None
    if isinstance(exc, asyncpg.InterfaceError):
        message = str(exc).lower()
        return any(hint in message for hint in _CLOSED_CONNECTION_HINTS)
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith(_CONNECTION_CLASS) or sqlstate in _UNAVAILABLE_SQLSTATES
    )


def _table_missing(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc``, or an exception it wraps (SQLAlchemy's ``orig``) or was raised
    ``from``, says PostgreSQL cannot be reached right now; retrying later may succeed.

    An exception merely raised while handling another (``__context__``) is not followed: it
    is a failure of its own.
    """
    return _in_chain(exc, _by_itself)


def is_schema_missing(exc: BaseException) -> bool:
    """True when ``exc`` (followed as ``is_database_unavailable`` follows it) is a table that
    does not exist: the database was not migrated."""
    return _in_chain(exc, _table_missing)


def _in_chain(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if test(current):
            return True
        wrapped = getattr(current, "orig", None)
        if isinstance(wrapped, BaseException):
            pending.append(wrapped)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return False
