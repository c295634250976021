"""Statements sent straight to asyncpg, still seen by the engine's observers.

On the hot paths (reads of the graph, event ingestion) SQLAlchemy's statement and result
machinery costs more than the SQL itself. Those paths use the driver connection under a
pooled SQLAlchemy connection and emit the engine's cursor events themselves, so the
per-request statement count, slow-SQL warnings and tests' counters still see every statement.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class DriverConnection:
    """An asyncpg connection whose statements are reported to its SQLAlchemy connection's
    listeners. Rows are asyncpg records: columns are read by name (``row["id"]``)."""

    __slots__ = ("_observed", "driver")

    def __init__(self, observed: Connection, driver: asyncpg.Connection) -> None:
        self._observed = observed
        self.driver = driver

    @classmethod
    async def under(cls, connection: AsyncConnection) -> DriverConnection:
        raw = await connection.get_raw_connection()
        observed = connection.sync_connection
        assert observed is not None, "the connection is open"
        return cls(observed, raw.driver_connection)

    def usable(self) -> bool:
        """Open and outside any transaction: safe to hand back to the pool or to reuse."""
        return not self.driver.is_closed() and not self.driver.is_in_transaction()

    async def fetch(
        self, sql: str, *args: Any, record_class: type[asyncpg.Record] | None = None
    ) -> list[Any]:
        events = self._observed.dispatch
        events.before_cursor_execute(self._observed, None, sql, args, None, False)
        rows = await self.driver.fetch(sql, *args, record_class=record_class)
        events.after_cursor_execute(self._observed, None, sql, args, None, False)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        events = self._observed.dispatch
        events.before_cursor_execute(self._observed, None, sql, args, None, False)
        await self.driver.execute(sql, *args)
        events.after_cursor_execute(self._observed, None, sql, args, None, False)


async def in_session_transaction(session: AsyncSession) -> DriverConnection:
    """The session's connection, inside the session's transaction.

    SQLAlchemy sends BEGIN only with its first statement; a statement sent to the driver
    before that would run (and commit) on its own, so one cheap statement opens it here.
    """
    connection = await session.connection()
    driver = await DriverConnection.under(connection)
    if not driver.driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver
