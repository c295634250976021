"""Relay's Node: node(id:) and nodes(ids:) reach every object with an id, in order, with scopes.

Expected values are read back with SQL; the set of types checked is the schema's own list of
Node implementations, so a new type with an id cannot go untested.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.domain.limits import NODES_MAX
from app.observability.sql_observer import recording
from app.security.api_keys import create_api_key
from resolvers.nodes import NODE_SOURCES
from schema import build_schema
from schema.build import graphql_core_schema
from tests.graphql.seed_reading import fetch, run
from tests.graphql_client import gql

UNKNOWN = "00000000-0000-4000-8000-000000000000"

# Per Node type: its table, a field only that type has, and the SQL expression of its value.
TYPES: dict[str, tuple[str, str, str]] = {
    "CampaignTemplate": ("campaign_templates", "name", "name"),
    "EmailStep": ("email_steps", "body", "body"),
    "LinkedInStep": ("linkedin_steps", "action", "upper(action::text)"),
    "CampaignInstance": ("campaign_instances", "name", "name"),
    "Enrollment": ("enrollments", "contactId", "contact_id"),
    "CampaignEvent": ("campaign_events", "eventType", "upper(event_type::text)"),
    "Dispatch": ("dispatches", "status", "upper(status::text)"),
    "Suppression": ("suppressions", "address", "address"),
}
FRAGMENTS = " ".join(f"... on {name} {{ {field} }}" for name, (_, field, _) in TYPES.items())
NODE = f"query($id: ID!) {{ node(id: $id) {{ __typename id {FRAGMENTS} }} }}"
NODES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ __typename id {FRAGMENTS} }} }}"


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return graphql_core_schema(build_schema())


@pytest.fixture
async def every_type(seeded: Starlette) -> Starlette:
    """The seed plus what it lacks: a dispatch and a suppression."""
    await run(
        seeded,
        "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number, provider,"
        " status, attempts, due_at, next_attempt_at)"
        " SELECT id, instance_id, 'email', 1, 'postmark', 'queued', 0, now(), now()"
        " FROM enrollments ORDER BY id LIMIT 1",
    )
    await run(
        seeded,
        "INSERT INTO suppressions (channel, address, reason, created_by)"
        " VALUES ('email', 'node@example.com', 'manual', 'test')",
    )
    return seeded


async def _key(app: Starlette, name: str, *scopes: Scope) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, frozenset(scopes))


async def _expected(app: Starlette, type_name: str) -> list[dict[str, Any]]:
    """Every object of the type, as node answers it (ordered by id)."""
    table, field, expression = TYPES[type_name]
    rows = await fetch(app, f"SELECT id::text AS id, {expression} AS v FROM {table} ORDER BY id")
    return [{"__typename": type_name, "id": r["id"], field: r["v"]} for r in rows]


def test_every_object_type_with_an_id_is_a_node(graphql_schema: GraphQLSchema) -> None:
    """The interface, the resolver's table of sources and this test's list agree."""
    node = graphql_schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    with_id = {
        named.name
        for named in graphql_schema.type_map.values()
        if isinstance(named, GraphQLObjectType)
        and not named.name.startswith("__")
        and str(getattr(named.fields.get("id"), "type", "")) == "ID!"
    }
    implementations = {t.name for t in graphql_schema.get_possible_types(node)}
    assert with_id == implementations
    assert {s.type_name for s in NODE_SOURCES.values()} == implementations
    assert set(TYPES) == implementations


async def test_node_fetches_each_type(
    every_type: Starlette, client: httpx.AsyncClient, admin_key: str
) -> None:
    for type_name in TYPES:
        expected = await _expected(every_type, type_name)
        assert expected, type_name  # the dataset has one to fetch
        for want in expected[:3]:
            body = await gql(client, admin_key, NODE, {"id": want["id"]})
            assert body == {"data": {"node": want}}, type_name


async def test_node_answers_nested_fields_through_the_usual_loaders(
    every_type: Starlette, client: httpx.AsyncClient, admin_key: str
) -> None:
    """A node's relations resolve as on the type's own root field."""
    (dispatch,) = await fetch(
        every_type,
        "SELECT d.id::text AS id, e.contact_id, i.name AS instance, t.name AS template"
        " FROM dispatches d JOIN enrollments e ON e.id = d.enrollment_id"
        " JOIN campaign_instances i ON i.id = d.instance_id"
        " JOIN campaign_templates t ON t.id = i.template_id",
    )
    query = """query($id: ID!) { node(id: $id) { ... on Dispatch { enrollment { contactId
      instance { name metrics { enrolled } template { name } } } } } }"""
    body = await gql(client, admin_key, query, {"id": dispatch["id"]})
    enrollment = body["data"]["node"]["enrollment"]
    assert enrollment["contactId"] == dispatch["contact_id"]
    assert enrollment["instance"]["name"] == dispatch["instance"]
    assert enrollment["instance"]["template"]["name"] == dispatch["template"]
    (enrolled,) = await fetch(
        every_type,
        "SELECT count(*) AS n FROM enrollments WHERE instance_id ="
        " (SELECT instance_id FROM dispatches)",
    )
    assert enrollment["instance"]["metrics"]["enrolled"] == enrolled["n"]


async def test_nodes_keep_the_order_with_nulls_for_unknown_ids(
    every_type: Starlette, client: httpx.AsyncClient, admin_key: str
) -> None:
    expected = {name: await _expected(every_type, name) for name in TYPES}
    # Interleaved types, an unknown id, a repeated id, and ids in another spelling.
    wanted: list[dict[str, Any] | None] = []
    for index in range(3):
        for name in reversed(TYPES):
            if index < len(expected[name]):
                wanted.append(expected[name][index])
        wanted.append(None)
    wanted.append(wanted[0])
    ids = [UNKNOWN if w is None else w["id"] for w in wanted]
    ids[1] = ids[1].upper()  # a UUID in capitals is the same id
    body = await gql(client, admin_key, NODES, {"ids": ids})
    assert body == {"data": {"nodes": wanted}}
    assert await gql(client, admin_key, NODES, {"ids": []}) == {"data": {"nodes": []}}
    assert await gql(client, admin_key, NODE, {"id": UNKNOWN}) == {"data": {"node": None}}


async def test_fragments_select_fields_of_the_concrete_type_only(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    template = (await _expected(seeded, "CampaignTemplate"))[0]
    instance = (await _expected(seeded, "CampaignInstance"))[0]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { id
      ... on CampaignTemplate { name isActive } ...Named } }
      fragment Named on CampaignInstance { instanceName: name }"""
    body = await gql(client, read_key, query, {"ids": [template["id"], instance["id"]]})
    (active,) = await fetch(
        seeded,
        "SELECT is_active FROM campaign_templates WHERE id = CAST(:i AS uuid)",
        i=template["id"],
    )
    assert body == {
        "data": {
            "nodes": [
                {"id": template["id"], "name": template["name"], "isActive": active["is_active"]},
                {"id": instance["id"], "instanceName": instance["name"]},
            ]
        }
    }


async def test_more_ids_than_the_limit_are_refused(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    at_limit = [str(uuid.uuid4()) for _ in range(NODES_MAX)]
    body = await gql(
        client, read_key, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": at_limit}
    )
    assert body == {"data": {"nodes": [None] * NODES_MAX}}
    over = await gql(
        client,
        read_key,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [*at_limit, UNKNOWN]},
    )
    assert over["data"] is None
    (error,) = over["errors"]
    assert error["path"] == ["nodes"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": ["ids"]}
    assert str(NODES_MAX) in error["message"]


async def test_a_malformed_id_is_an_invalid_error_at_its_position(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    template = (await _expected(seeded, "CampaignTemplate"))[0]
    body = await gql(client, read_key, NODES, {"ids": [template["id"], "not-an-id", UNKNOWN]})
    assert body["data"] == {"nodes": [template, None, None]}
    (error,) = body["errors"]
    assert error["path"] == ["nodes", 1]
    assert error["extensions"] == {"code": "INVALID", "field": ["ids", "1"]}
    single = await gql(client, read_key, NODE, {"id": "not-an-id"})
    assert single["data"] == {"node": None}
    assert single["errors"][0]["extensions"] == {"code": "INVALID", "field": ["id"]}
    assert single["errors"][0]["path"] == ["node"]


async def test_scopes_apply_through_node(
    every_type: Starlette, client: httpx.AsyncClient, read_key: str, admin_key: str
) -> None:
    """Suppressions need admin, through node as through Query.suppressions; a key without
    read gets nothing at all."""
    (suppression,) = await _expected(every_type, "Suppression")
    template = (await _expected(every_type, "CampaignTemplate"))[0]
    ids = [template["id"], suppression["id"]]

    read_only = await gql(client, read_key, NODES, {"ids": ids})
    assert read_only["data"] == {"nodes": [template, None]}
    (error,) = read_only["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["nodes", 1], "FORBIDDEN")
    assert "admin" in error["message"]
    single = await gql(client, read_key, NODE, {"id": suppression["id"]})
    assert single["data"] == {"node": None}
    assert single["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    reader_and_admin = await _key(every_type, "read-admin", Scope.READ, Scope.ADMIN)
    for key in (admin_key, reader_and_admin):
        assert await gql(client, key, NODES, {"ids": ids}) == {
            "data": {"nodes": [template, suppression]}
        }

    write_only = await _key(every_type, "write-only", Scope.WRITE)
    for query, variables in ((NODES, {"ids": ids}), (NODE, {"id": template["id"]})):
        refused = await gql(client, write_only, query, variables)
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "read" in error["message"]
    assert (await gql(client, write_only, NODES, {"ids": ids}))["data"] is None


async def test_a_deep_selection_under_nodes_is_costed_before_any_sql(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """Each id multiplies what is under nodes: 100 ids of deep pages pass the cost limit."""
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { ... on CampaignTemplate {
      instances(first: 50) { nodes { enrollments(first: 10) { nodes { id } } } } } } }"""
    per_node = 50 + 50 * 10
    ids = [str(uuid.uuid4()) for _ in range(NODES_MAX)]
    with recording(app.state.engine) as statements:
        refused = await gql(client, read_key, query, {"ids": ids})
    assert refused["data"] is None
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["value"] == NODES_MAX * per_node
    assert [s for s in statements if "api_keys" not in s] == []
    # The same selection under a few ids stays under the limit and runs.
    allowed = await gql(client, read_key, query, {"ids": ids[:5]})
    assert allowed == {"data": {"nodes": [None] * 5}}
