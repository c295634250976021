"""No N+1: the dashboard query costs the same number of statements on a 10x wider dataset."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from testkit.examples import example
from testkit.factories import Shape, build_dataset
from tests.conftest import TABLES, empty_tables
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
            await empty_tables(connection, TABLES[:-1])
            await build_dataset(connection, shape)
        counts.append(await _dashboard_statements(app, client, read_key))
        sizes.append(_objects(await gql(client, read_key, DASHBOARD)))
    assert sizes[1] >= 10 * sizes[0], sizes  # the second dataset really returns more
    assert counts[0] == counts[1], counts
    assert counts[1] <= 12, counts
    # Reads go to the driver directly: they must still be seen (one per relation and count).
    assert counts[1] >= 10, counts


NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
  ... on CampaignTemplate { name } ... on EmailStep { subject } ... on CampaignInstance { status }
  ... on Enrollment { contactId } ... on CampaignEvent { eventType } } }"""
NODE_TABLES = {
    "CampaignTemplate": "campaign_templates",
    "EmailStep": "email_steps",
    "CampaignInstance": "campaign_instances",
    "Enrollment": "enrollments",
    "CampaignEvent": "campaign_events",
}


async def _node_statements(
    app: Starlette, client: httpx.AsyncClient, key: str, ids: list[str]
) -> tuple[int, list[Any]]:
    with recording(app.state.engine) as statements:
        body = await gql(client, key, NODES, {"ids": ids})
    assert "errors" not in body, body
    return len([s for s in statements if "api_keys" not in s]), body["data"]["nodes"]


async def test_nodes_cost_one_lookup_and_one_statement_per_type_present(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """100 ids of five types: the type lookup, then one batch per type, not one per id."""
    async with app.state.engine.begin() as connection:
        await build_dataset(connection, Shape(10, 2, 5, 2))
        ids_of = {
            name: list((await connection.execute(text(f"SELECT id::text FROM {table}"))).scalars())
            for name, table in NODE_TABLES.items()
        }
    per_type = {"CampaignTemplate": 10, "EmailStep": 15, "CampaignInstance": 15}
    per_type |= {"Enrollment": 25, "CampaignEvent": 25}
    picked = [(name, i) for name, count in per_type.items() for i in ids_of[name][:count]]
    picked += [(None, str(uuid.UUID(int=n))) for n in range(1, 11)]  # unknown ids
    random.Random(25).shuffle(picked)
    assert len(picked) == 100

    count, nodes = await _node_statements(app, client, read_key, [i for _, i in picked])
    assert [n and (n["__typename"], n["id"]) for n in nodes] == [
        None if name is None else (name, i) for name, i in picked
    ]
    assert count == 1 + len(per_type), count
    # One id of each type costs the same statements as twenty of each.
    few = [ids_of[name][0] for name in per_type]
    assert (await _node_statements(app, client, read_key, few))[0] == count
