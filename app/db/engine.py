"""Engine and session factories, and the transaction runner that retries deadlock victims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
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
    """An asyncpg engine whose every connection carries the statement and idle timeouts."""
    return create_async_engine(
        url or resolve_database_url(settings),
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
