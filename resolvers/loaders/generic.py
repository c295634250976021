"""The shapes every relation loader takes: by id, list by parent, page by parent, count by parent.

Each batch is ONE statement for all the parents it was given, whatever their number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from aiodataloader import DataLoader

from app.domain.keyset import PageRequest
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.sql import typed

Filters = tuple[tuple[str, str | bool | None], ...]
"""Column equality filters as ``((column, value), ...)``; a None value means "any"."""


@dataclass(frozen=True, slots=True)
class Table:
    """Where a relation's rows live and how they are listed."""

    name: str
    alias: str
    columns: str
    sort: str = "created_at"


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Any]
    has_next: bool
    has_previous: bool
    sort: str


def filter_sql(alias: str, filters: Filters) -> tuple[str, dict[str, Any]]:
    """``AND`` clauses for the filters that are set, with their bound parameters."""
    clauses, params = [], {}
    for column, value in filters:
        if value is None:
            continue
        clauses.append(f" AND {alias}.{column} = :f_{column}")
        params[f"f_{column}"] = value
    return "".join(clauses), params


def keyset_sql(table: Table, page: PageRequest) -> tuple[str, str, dict[str, Any]]:
    """Cursor condition, order and parameters that make pages stable: newest first, id
    breaking ties; one row more than asked tells whether there is a next page."""
    a = table.alias
    params: dict[str, Any] = {"limit": page.first + 1}
    where = ""
    if page.after is not None:
        where = f" AND ({a}.{table.sort}, {a}.id) < (:after_sort, CAST(:after_id AS uuid))"
        params |= {"after_sort": page.after.sort_key, "after_id": page.after.id}
    return where, f" ORDER BY {a}.{table.sort} DESC, {a}.id DESC", params


def to_page(rows: Sequence[Any], page: PageRequest, sort: str) -> Page:
    return Page(
        rows=rows[: page.first],
        has_next=len(rows) > page.first,
        has_previous=page.after is not None,
        sort=sort,
    )


class ByIdLoader(DataLoader):  # type: ignore[misc]
    def __init__(self, db: RequestDatabase, table: Table) -> None:
        super().__init__()
        self._db = db
        self._statement = typed(
            f"SELECT {table.columns} FROM {table.name} {table.alias}"
            f" WHERE {table.alias}.id = ANY(CAST(:ids AS uuid[]))"
        )

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Any | None]:
        rows = await self._db.fetch(self._statement, {"ids": list(keys)})
        found = {row.id: row for row in rows}
        return [found.get(key) for key in keys]


class ListByParentLoader(DataLoader):  # type: ignore[misc]
    """Keys are ``(parent_id, filters)``; every list comes back in ``order`` order."""

    def __init__(self, db: RequestDatabase, table: Table, parent: str, order: str) -> None:
        super().__init__()
        self._db, self._table, self._parent, self._order = db, table, parent, order

    async def batch_load_fn(self, keys: Sequence[tuple[str, Filters]]) -> list[list[Any]]:
        t = self._table
        groups: dict[Filters, list[str]] = defaultdict(list)
        for parent_id, filters in keys:
            groups[filters].append(parent_id)
        found: dict[tuple[str, Filters], list[Any]] = defaultdict(list)
        for filters, parent_ids in groups.items():
            where, params = filter_sql(t.alias, filters)
            statement = typed(
                f"SELECT {t.alias}.{self._parent}::text AS parent_key, {t.columns}"
                f" FROM {t.name} {t.alias}"
                f" WHERE {t.alias}.{self._parent} = ANY(CAST(:ids AS uuid[])){where}"
                f" ORDER BY {t.alias}.{self._parent}, {self._order}"
            )
            for row in await self._db.fetch(statement, params | {"ids": parent_ids}):
                found[(row.parent_key, filters)].append(row)
        return [found.get(key, []) for key in keys]


class PageByParentLoader(DataLoader):  # type: ignore[misc]
    """Keys are ``(parent_id, page, filters)``: the first N children of every parent at once,
    one LATERAL probe of the ``(parent, sort, id)`` index per parent."""

    def __init__(self, db: RequestDatabase, table: Table, parent: str) -> None:
        super().__init__()
        self._db, self._table, self._parent = db, table, parent

    async def batch_load_fn(self, keys: Sequence[tuple[str, PageRequest, Filters]]) -> list[Page]:
        t = self._table
        groups: dict[tuple[PageRequest, Filters], list[str]] = defaultdict(list)
        for parent_id, page, filters in keys:
            groups[(page, filters)].append(parent_id)
        found: dict[Hashable, Page] = {}
        for (page, filters), parent_ids in groups.items():
            where, params = filter_sql(t.alias, filters)
            cursor, order, keyset_params = keyset_sql(t, page)
            statement = typed(
                f"SELECT p.parent_id::text AS parent_key, c.*"
                f" FROM unnest(CAST(:ids AS uuid[])) AS p(parent_id)"
                f" CROSS JOIN LATERAL (SELECT {t.columns} FROM {t.name} {t.alias}"
                f" WHERE {t.alias}.{self._parent} = p.parent_id{where}{cursor}{order}"
                f" LIMIT :limit) c"
            )
            rows = await self._db.fetch(statement, params | keyset_params | {"ids": parent_ids})
            by_parent: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                by_parent[row.parent_key].append(row)
            for parent_id in parent_ids:
                found[(parent_id, page, filters)] = to_page(
                    by_parent.get(parent_id, []), page, t.sort
                )
        return [found[key] for key in keys]


class CountByParentLoader(DataLoader):  # type: ignore[misc]
    """Keys are ``(parent_id, filters)``; all counts of a batch in one ``GROUP BY``."""

    def __init__(self, db: RequestDatabase, table: Table, parent: str) -> None:
        super().__init__()
        self._db, self._table, self._parent = db, table, parent

    async def batch_load_fn(self, keys: Sequence[tuple[str, Filters]]) -> list[int]:
        t = self._table
        groups: dict[Filters, list[str]] = defaultdict(list)
        for parent_id, filters in keys:
            groups[filters].append(parent_id)
        counts: dict[tuple[str, Filters], int] = {}
        for filters, parent_ids in groups.items():
            where, params = filter_sql(t.alias, filters)
            statement = typed(
                f"SELECT {t.alias}.{self._parent}::text AS parent_key, count(*) AS n"
                f" FROM {t.name} {t.alias}"
                f" WHERE {t.alias}.{self._parent} = ANY(CAST(:ids AS uuid[])){where}"
                f" GROUP BY 1"
            )
            for row in await self._db.fetch(statement, params | {"ids": parent_ids}):
                counts[(row.parent_key, filters)] = row.n
        return [counts.get(key, 0) for key in keys]


class TableByIdLoader(DataLoader):  # type: ignore[misc]
    """Keys are ids; each comes back as the table (of ``tables``) that holds it, or None.

    One statement per batch, whatever the number of tables: a UNION ALL of one primary-key
    probe per table. Ids are random UUIDs, so no two tables share one; were that ever not so,
    the table listed first wins, so the answer never depends on the order rows come back."""

    def __init__(self, db: RequestDatabase, tables: Sequence[Table]) -> None:
        super().__init__()
        self._db = db
        self._tables = tuple(tables)
        probes = " UNION ALL ".join(
            f"SELECT id, {index} AS source FROM {table.name} WHERE id = ANY(CAST(:ids AS uuid[]))"
            for index, table in enumerate(self._tables)
        )
        self._statement = typed(f"SELECT h.id::text AS id, h.source FROM ({probes}) h")

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Table | None]:
        found: dict[str, int] = {}
        for row in await self._db.fetch(self._statement, {"ids": list(keys)}):
            found[row.id] = min(row.source, found.get(row.id, row.source))
        return [self._tables[found[key]] if key in found else None for key in keys]
