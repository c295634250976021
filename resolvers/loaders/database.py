"""One database connection per request, used by one statement at a time and never in a
transaction, so a read request never holds a transaction open across other work."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.driver import DriverConnection
from resolvers.loaders.sql import ReadStatement


class Row(asyncpg.Record):
    """A row whose columns read as attributes; ``<name>_json`` columns read as ``<name>``,
    decoded when read (most queries never ask for metadata, and decoding every row's cost
    more than the SQL did). Used the first time a statement runs; then its shape's class."""

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
                    return decode_json_column(text)
        raise AttributeError(name)


_LONG_NUMBER = re.compile(r"[0-9]{19}")


def decode_json_column(text: str | None) -> Any:
    """``json.loads``'s value, by orjson where the two agree: orjson turns an integer beyond
    64 bits into a float and refuses what overflows a double, so a document with a run of 19
    digits or more, or one orjson refuses, goes to ``json.loads``."""
    if text is None:
        return None
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _json_at(index: int) -> property:
    return property(lambda row: decode_json_column(row[index]))


_RECORD_ATTRIBUTES = frozenset(dir(asyncpg.Record))


@lru_cache(maxsize=256)
def shape_class(columns: tuple[str, ...]) -> type[asyncpg.Record]:
    """A record class with one C-level property per column: reading a field costs no Python
    call, and a missing attribute (GraphQL's ``__await__`` probe) fails without one."""
    clashes = _RECORD_ATTRIBUTES.intersection(columns)
    if clashes:
        raise ValueError(f"columns {sorted(clashes)} would hide record methods; alias them")
    attributes: dict[str, Any] = {"__slots__": ()}
    for index, column in enumerate(columns):
        attributes[column] = property(itemgetter(index))
        if column.endswith("_json"):
            attributes[column.removesuffix("_json")] = _json_at(index)
    return type("Row", (asyncpg.Record,), attributes)


_SHAPES: dict[str, type[asyncpg.Record]] = {}
"""Each statement's record class, learnt from its first rows (statements are a fixed set)."""


class RequestDatabase:
    """Lazily acquires an AUTOCOMMIT connection; loader batches queue on a lock to use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._driver: DriverConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def fetch(self, read: ReadStatement, params: Mapping[str, Any]) -> Sequence[Any]:
        """The rows as records whose attributes are the statement's columns.

        Reads go straight to asyncpg (``app.db.driver``): SQLAlchemy's result machinery cost
        more than the queries.
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
                self._driver = await DriverConnection.under(self._connection)
            shape = _SHAPES.get(read.sql, Row)
            arguments = read.arguments(params)
            try:
                rows = await self._driver.fetch(read.sql, *arguments, record_class=shape)
            except BaseException:
                # graphql-core cancels the siblings of a failed non-null field; a statement
                # cut off midway leaves the connection unusable, so the next read gets another.
                connection, self._connection, self._driver = self._connection, None, None
                await connection.invalidate()
                await connection.close()
                raise
            if shape is Row and rows and len(_SHAPES) < 1024:
                _SHAPES[read.sql] = shape_class(tuple(rows[0].keys()))
            return rows

    async def close(self) -> None:
        """Under the lock: a read still connecting must finish and have its connection closed."""
        self._closed = True
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = self._driver = None
