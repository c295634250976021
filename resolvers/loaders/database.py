"""One database connection per request, used by one statement at a time and never in a
transaction, so a read request never holds a transaction open across other work."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from resolvers.loaders.sql import ReadStatement


class Row(asyncpg.Record):
    """A row whose columns read as attributes; ``<name>_json`` columns read as ``<name>``,
    decoded when read (most queries never ask for metadata, and decoding every row's cost
    more than the SQL did).

    Built by the driver in C. GraphQL execution probes objects for ``__await__``: dunder
    names fail at once, without a lookup.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] != "__":
            try:
                return self[name]
            except KeyError:
                try:
                    text = self[name + "_json"]
                except KeyError:
                    pass
                else:
                    return None if text is None else json.loads(text)
        raise AttributeError(name)


class RequestDatabase:
    """Lazily acquires an AUTOCOMMIT connection; loader batches queue on a lock to use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._driver: Any = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def fetch(self, read: ReadStatement, params: Mapping[str, Any]) -> Sequence[Any]:
        """The rows as records whose attributes are the statement's columns.

        Reads go straight to asyncpg: SQLAlchemy's result machinery cost more than the
        queries. The engine's statement events are still emitted, so every observer (the
        per-request statement count, slow-SQL warnings, tests' counters) sees these reads.
        """
        async with self._lock:
            if self._closed:
                # A loader batch left running after its response was sent (graphql-core lets
                # siblings of a failed non-null field settle) must not open a connection that
                # nobody would close.
                raise RuntimeError("the request this read belonged to has finished")
            if self._connection is None:
                connection = await self._engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                self._driver = (await self._connection.get_raw_connection()).driver_connection
            observed = self._connection.sync_connection
            assert observed is not None
            events = observed.dispatch
            arguments = read.arguments(params)
            events.before_cursor_execute(observed, None, read.sql, arguments, None, False)
            try:
                rows = await self._driver.fetch(read.sql, *arguments, record_class=Row)
            except BaseException:
                # graphql-core cancels the siblings of a failed non-null field; a statement
                # cut off midway leaves the connection unusable, so the next read gets another.
                connection, self._connection, self._driver = self._connection, None, None
                await connection.invalidate()
                await connection.close()
                raise
            events.after_cursor_execute(observed, None, read.sql, arguments, None, False)
            return rows

    async def close(self) -> None:
        """Under the lock: a read still connecting must finish and have its connection closed."""
        self._closed = True
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = self._driver = None
