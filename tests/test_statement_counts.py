"""No N+1: the dashboard query costs the same number of statements on a 10x wider dataset."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from testkit.examples import example
from testkit.factories import Shape, build_dataset
from tests.conftest import TABLES
from tests.graphql_client import gql

DASHBOARD = example("dashboard.graphql")


async def _dashboard_statements(app: Starlette, client: httpx.AsyncClient, key: str) -> int:
    """The query's own statements: the key lookup runs only when the key cache has no entry."""
    with recording(app.state.engine) as statements:
        body = await gql(client, key, DASHBOARD)
    assert "errors" not in body, body
    return len([s for s in statements if "FROM api_keys" not in s])


def _objects(body: dict[str, Any]) -> int:
    templates = body["data"]["templates"]["nodes"]
    instances = [i for t in templates for i in t["instances"]["nodes"]]
    enrollments = [n for i in instances for n in i["enrollments"]["nodes"]]
    return len(templates) + len(instances) + len(enrollments)


async def test_dashboard_statements_do_not_grow_with_the_data(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    engine: AsyncEngine = app.state.engine
    counts, sizes = [], []
    for shape in (Shape(1, 1, 2, 1), Shape(10, 5, 20, 10)):
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES[:-1])} CASCADE"))
            await build_dataset(connection, shape)
        counts.append(await _dashboard_statements(app, client, read_key))
        sizes.append(_objects(await gql(client, read_key, DASHBOARD)))
    assert sizes[1] >= 10 * sizes[0], sizes  # the second dataset really returns more
    assert counts[0] == counts[1], counts
    assert counts[1] <= 12, counts
    # Reads go to the driver directly: they must still be seen (one per relation and count).
    assert counts[1] >= 10, counts
