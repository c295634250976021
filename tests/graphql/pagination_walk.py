"""Walking a connection page by page and checking it against SQL: the helpers of
``test_pagination``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from testkit.factories import Shape, build_dataset
from tests.graphql_client import gql

SHAPE = Shape(
    templates=7, instances_per_template=5, enrollments_per_instance=13, events_per_enrollment=11
)
PAGE = 3
CONNECTION = (
    "totalCount edges { cursor node { id } } nodes { id } pageInfo {"
    " hasNextPage hasPreviousPage startCursor endCursor }"
)

Extract = Callable[[dict[str, Any]], dict[str, Any]]


async def build(engine: AsyncEngine, shape: Shape = SHAPE) -> None:
    async with engine.begin() as connection:
        await build_dataset(connection, shape)


async def fetch(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(r) for r in (await connection.execute(text(sql), params)).mappings()]


async def run(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(sql), params)


async def expected_order(
    engine: AsyncEngine, table: str, where: str = "true", **params: Any
) -> list[str]:
    """The contract's order read with SQL, and checked against a sort done here."""
    sort = "occurred_at" if table == "campaign_events" else "created_at"
    rows = await fetch(
        engine,
        f"SELECT id::text AS id, {sort} AS sort FROM {table} WHERE {where}"
        f" ORDER BY {sort} DESC, id DESC",
        **params,
    )
    ordered = [r["id"] for r in rows]
    by_python = sorted(rows, key=lambda r: (r["sort"], uuid.UUID(r["id"])), reverse=True)
    assert ordered == [r["id"] for r in by_python]
    return ordered


async def ok(
    client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    body = await gql(client, key, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def walk(
    client: httpx.AsyncClient,
    key: str,
    query: str,
    extract: Extract,
    expected: list[str],
    variables: dict[str, Any] | None = None,
    first: int = PAGE,
    check_edge_cursors: bool = True,
) -> list[dict[str, Any]]:
    """Walk a connection to its end; ``query`` takes ``$first`` and ``$after``."""
    variables = variables or {}
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        connection = extract(
            await ok(client, key, query, variables | {"first": first, "after": after})
        )
        pages.append(connection)
        number = len(pages)
        assert number <= len(expected) // first + 1, "the walk does not end"
        node_ids = [n["id"] for n in connection["nodes"]]
        edges = connection["edges"]
        info = connection["pageInfo"]
        where = f"page {number} after {len(seen)} rows"
        assert connection["totalCount"] == len(expected), where
        assert [e["node"]["id"] for e in edges] == node_ids, where
        assert node_ids == expected[len(seen) : len(seen) + first], where
        assert info["hasPreviousPage"] is (number > 1), where
        seen += node_ids
        assert info["hasNextPage"] is (len(seen) < len(expected)), where
        if edges:
            assert info["startCursor"] == edges[0]["cursor"], where
            assert info["endCursor"] == edges[-1]["cursor"], where
        else:
            assert info["startCursor"] is None, where
            assert info["endCursor"] is None, where
        assert len(set(e["cursor"] for e in edges)) == len(edges), where
        if not info["hasNextPage"]:
            break
        assert len(node_ids) == first, where
        after = info["endCursor"]
    assert len(seen) == len(set(seen)), "a row came twice"
    assert seen == expected
    if check_edge_cursors:
        await check_cursors(client, key, query, extract, expected, pages, variables)
    return pages


async def check_cursors(
    client: httpx.AsyncClient,
    key: str,
    query: str,
    extract: Extract,
    expected: list[str],
    pages: list[dict[str, Any]],
    variables: dict[str, Any],
) -> None:
    """``edges[i].cursor`` continues right after edge i (the walk covered the end cursors)."""
    position = 0
    for page in pages:
        for edge in page["edges"]:
            assert edge["node"]["id"] == expected[position]
            position += 1
            if edge is page["edges"][-1]:
                continue
            data = await ok(client, key, query, variables | {"first": 2, "after": edge["cursor"]})
            connection = extract(data)
            assert [n["id"] for n in connection["nodes"]] == expected[position : position + 2]
            assert connection["pageInfo"]["hasPreviousPage"] is True
            assert connection["pageInfo"]["hasNextPage"] is (position + 2 < len(expected))
            assert connection["totalCount"] == len(expected)


def path(*keys: str) -> Extract:
    def extract(data: dict[str, Any]) -> dict[str, Any]:
        for k in keys:
            data = data[k]
        return data

    return extract


async def one_id(engine: AsyncEngine, sql: str, **params: Any) -> str:
    rows = await fetch(engine, sql, **params)
    assert rows
    return str(rows[0]["id"])
