"""One database connection per request, used by one statement at a time and never in a
transaction, so a read request never holds a transaction open across other work."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class RequestDatabase:
    """Lazily acquires an AUTOCOMMIT connection; loader batches queue on a lock to use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def fetch(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        async with self._lock:
            if self._connection is None:
                connection = await self._engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            result = await self._connection.execute(statement, params)
            return result.all()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
