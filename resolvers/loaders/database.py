"""One database connection per request, used by one statement at a time and never in a
transaction, so a read request never holds a transaction open across other work."""

from __future__ import annotations

import asyncio
import json
from collections import namedtuple
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from resolvers.loaders.sql import ReadStatement

_TUPLE_METHODS = frozenset(dir(tuple))


def _decoded(index: int) -> property:
    return property(lambda record: json.loads(record[index]) if record[index] is not None else None)


@lru_cache(maxsize=256)
def record_class(keys: tuple[str, ...], json_columns: frozenset[str]) -> type[tuple[Any, ...]]:
    """A tuple type per result shape, with the columns as attributes and JSON decoded on read.

    Rows must not be SQLAlchemy ``Row`` objects: GraphQL execution probes every returned
    object (``hasattr(obj, "__await__")``), and on a Row each failed probe raises and
    formats an internal KeyError. A named tuple answers that probe cheaply and builds in C.
    """
    clashes = _TUPLE_METHODS.intersection(keys)
    if clashes:
        raise ValueError(f"columns {sorted(clashes)} would hide tuple methods; alias them")
    stored = [f"{key}_json" if key in json_columns else key for key in keys]
    base = namedtuple("Record", stored)  # type: ignore[misc]
    decoded = {key: _decoded(stored.index(f"{key}_json")) for key in json_columns if key in keys}
    return type("Record", (base,), {"__slots__": (), **decoded})


class RequestDatabase:
    """Lazily acquires an AUTOCOMMIT connection; loader batches queue on a lock to use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def fetch(self, read: ReadStatement, params: Mapping[str, Any]) -> Sequence[Any]:
        """The rows as records whose attributes are the statement's columns."""
        async with self._lock:
            if self._closed:
                # A loader batch left running after its response was sent (graphql-core lets
                # siblings of a failed non-null field settle) must not open a connection that
                # nobody would close.
                raise RuntimeError("the request this read belonged to has finished")
            if self._connection is None:
                connection = await self._engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                result = await self._connection.execute(read.statement, params)
            except BaseException:
                # graphql-core cancels the siblings of a failed non-null field; a statement
                # cut off midway leaves the connection unusable, so the next read gets another.
                connection, self._connection = self._connection, None
                await connection.invalidate()
                await connection.close()
                raise
            make = record_class(tuple(result.keys()), read.json_columns)._make
            return [make(row) for row in result.all()]

    async def close(self) -> None:
        """Under the lock: a read still connecting must finish and have its connection closed."""
        self._closed = True
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
