"""Statements sent straight to asyncpg, still seen by the engine's statement observer.

On the hot paths (reads of the graph, event ingestion) SQLAlchemy's statement and result
machinery costs more than the SQL itself. Those paths use the driver connection under a
pooled SQLAlchemy connection and hand each statement to the engine's observer
(``app.observability.sql_observer``), so the per-request statement count, slow-SQL warnings
and tests' counters still see every statement.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.observability.sql_observer import Observed, observing


class DriverConnection:
    """An asyncpg connection whose statements are reported to its engine's observer.
    Rows are asyncpg records: columns are read by name (``row["id"]``)."""

    __slots__ = ("_fresh_plans", "_observed", "driver")

    def __init__(
        self, observed: Observed, driver: asyncpg.Connection, fresh_plans: bool = False
    ) -> None:
        self._observed = observed
        self.driver = driver
        self._fresh_plans = fresh_plans

    @classmethod
    async def under(
        cls, connection: AsyncConnection, fresh_plans: bool = False
    ) -> DriverConnection:
        """``fresh_plans``: prepare each statement anew, so that PostgreSQL plans it for its
        arguments (arrays of hundreds of rows) rather than settling on a generic plan, while
        the queries its foreign keys and triggers run keep their cached plans. (``SET
        plan_cache_mode = force_custom_plan`` planned those again for every row: a third of a
        sender's recording time.) It costs one round trip more per statement."""
        raw = await connection.get_raw_connection()
        return cls(observing(connection.sync_engine), raw.driver_connection, fresh_plans)

    def usable(self) -> bool:
        """Open and outside any transaction: safe to hand back to the pool or to reuse."""
        return not self.driver.is_closed() and not self.driver.is_in_transaction()

    async def fetch(
        self, sql: str, *args: Any, record_class: type[asyncpg.Record] | None = None
    ) -> list[Any]:
        with self._observed(sql):
            if self._fresh_plans:
                statement = await self.driver.prepare(sql, record_class=record_class)
                return await statement.fetch(*args)
            return await self.driver.fetch(sql, *args, record_class=record_class)

    async def execute(self, sql: str, *args: Any) -> None:
        with self._observed(sql):
            if self._fresh_plans and args:
                await (await self.driver.prepare(sql)).fetch(*args)
            else:
                await self.driver.execute(sql, *args)


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
