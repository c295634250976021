"""Engine and session factories, and the transaction runner that retries deadlock victims.

A connection's first statement that reads or binds one of the schema's enum types makes
asyncpg introspect the type (a ``jit`` round trip and a ``WITH RECURSIVE typeinfo_tree``
query), and a statement's first run on a connection prepares it. So that a steady state
costs only each request's own statements, every connection learns all the enum types
when it opens (two statements and the introspection, once), and the pool hands out the most
recently returned connection first (LIFO): after a burst, sequential requests keep reusing
the connection whose statements are already prepared instead of visiting every pooled one.

A connection taken from the pool is first checked with one ``SELECT 1`` (SQLAlchemy's pre-ping
wraps it in BEGIN and ROLLBACK outside AUTOCOMMIT: three round trips per checkout); one that
fails is replaced, and the pool's older connections with it, as the pre-ping would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.embedded import resolve_database_url
from app.settings import Settings

T = TypeVar("T")


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An asyncpg engine whose every connection carries the statement and idle timeouts and
    knows the schema's enum types from the start."""
    engine = create_async_engine(
        url or resolve_database_url(settings),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_use_lifo=True,
        connect_args={
            "timeout": settings.pool_timeout_s,
            "command_timeout": _client_timeout_s(settings),
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
                "application_name": "campaign-api",
                "jit": "off",
            },
        },
    )
    event.listen(engine.sync_engine, "connect", _learn_enum_types)
    event.listen(engine.sync_engine, "checkout", _ping)
    return engine


_ENUM_TYPES = (
    "SELECT coalesce(string_agg(format('NULL::%I.%I', n.nspname, t.typname), ', '), 'NULL')"
    " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE t.typtype = 'e' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)


_FRESH = "campaign_api.fresh"


def _learn_enum_types(dbapi_connection: Any, record: Any) -> None:
    """Introspect every enum type once, as the connection opens (see the module docstring)."""

    async def learn(driver: Any) -> None:
        columns = await driver.fetchval(_ENUM_TYPES)
        await driver.fetch(f"SELECT {columns}")

    dbapi_connection.run_async(learn)
    record.info[_FRESH] = True


def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """One ``SELECT 1`` (a simple query: nothing to prepare) on a pooled connection before
    it is handed out; a connection that has just opened needs none."""
    if record.info.pop(_FRESH, False):
        return
    try:
        dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
    except Exception as error:
        raise InvalidatePoolError(f"ping failed: {error!r}") from error


def _client_timeout_s(settings: Settings) -> float | None:
    """How long the driver waits for any answer, the pre-ping's included: a server that stops
    answering without closing the connection (a partition, a frozen host) would otherwise
    hold a request forever. Later than the server's own statement timeout, so that one
    normally fires first; none when statement timeouts are off."""
    if not settings.statement_timeout_ms:
        return None
    return settings.statement_timeout_ms / 1000 + settings.pool_timeout_s


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit, so payloads can be built from them."""
    return async_sessionmaker(engine, expire_on_commit=False)


RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


async def run_in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    attempts: int = 3,
) -> T:
    """Run ``work`` in one transaction, again from the start if PostgreSQL chose it as a
    deadlock or serialization victim (it was rolled back, so a retry is safe)."""
    for attempt in range(1, attempts + 1):
        try:
            async with sessionmaker.begin() as session:
                return await work(session)
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
    raise AssertionError("unreachable")
