"""Page info, cursors, page sizes and scopes on every root and nested connection."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from tests.graphql.seed_reading import PAGE_INFO, fetch, graphql_error, ids, newest_first, ok, sid
from tests.graphql_client import gql

# --------------------------------------------------------------------------- pages and errors


async def test_page_info_on_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($first: Int, $after: String) {{ templates(first: $first, after: $after) {{
      totalCount edges {{ cursor node {{ id }} }} nodes {{ id }} {PAGE_INFO} }} }}"""
    order = await newest_first(seeded, "campaign_templates", "is_active")
    assert len(order) == 3
    first = (await ok(client, read_key, query, {"first": 2}))["templates"]
    assert ids(first["nodes"]) == order[:2]
    assert [e["node"]["id"] for e in first["edges"]] == order[:2]
    assert first["totalCount"] == 3
    info = first["pageInfo"]
    assert info["hasNextPage"] is True
    assert info["hasPreviousPage"] is False
    assert info["startCursor"] == first["edges"][0]["cursor"]
    assert info["endCursor"] == first["edges"][1]["cursor"]
    second = await ok(client, read_key, query, {"first": 2, "after": info["endCursor"]})
    second = second["templates"]
    assert ids(second["nodes"]) == order[2:]
    assert second["totalCount"] == 3
    assert second["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": second["edges"][0]["cursor"],
        "endCursor": second["edges"][0]["cursor"],
    }
    # The cursor of the first edge continues right after it.
    middle = await ok(client, read_key, query, {"first": 5, "after": first["edges"][0]["cursor"]})
    assert ids(middle["templates"]["nodes"]) == order[1:]
    # The default page size (20) holds everything.
    everything = (await ok(client, read_key, query))["templates"]
    assert ids(everything["nodes"]) == order
    assert everything["pageInfo"]["hasNextPage"] is False


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_CURSORS = [
    "garbage",
    "",
    "!!!",
    _b64("not a date|" + str(uuid.uuid4())),
    _b64("2024-01-01T00:00:00+00:00|not-a-uuid"),
    _b64("2024-01-01T00:00:00|" + str(uuid.uuid4())),  # no time zone
    _b64("2024-01-01T00:00:00+00:00"),
    base64.b64encode(b"\xff\xfe\xfd").decode(),
]


async def test_malformed_cursor_on_root_templates(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = "query($after: String) { templates(after: $after) { totalCount nodes { id } } }"
    for cursor in BAD_CURSORS:
        error = await graphql_error(client, read_key, query, {"after": cursor})
        assert "cursor" in error["message"].lower() or "after" in error["message"], error


CONNECTIONS = {
    "templates": "query($after: String) { templates(after: $after) { nodes { id } } }",
    "instances": "query($after: String) { instances(after: $after) { nodes { id } } }",
    "orphanedEvents": "query($after: String) { orphanedEvents(after: $after) { nodes { id } } }",
    "template.instances": """query($after: String) { templates { nodes {
        instances(after: $after) { nodes { id } } } } }""",
    "instance.enrollments": """query($after: String) { instances { nodes {
        enrollments(after: $after) { nodes { id } } } } }""",
    "instance.events": """query($after: String) { instances { nodes {
        events(after: $after) { nodes { id } } } } }""",
    "enrollment.events": """query($after: String) { instances { nodes {
        enrollments { nodes { events(after: $after) { nodes { id } } } } } } }""",
}


async def test_cursor_outside_the_database_time_range_is_a_clean_error(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """Well-formed text, aware time, valid uuid, but a time PostgreSQL cannot store: still not
    a cursor this API issued, so the same INVALID error, not the driver's message and SQL."""
    row_id = sid("template:tech")
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        cursor = _b64(f"{stamp}|{row_id}")
        for name in ("templates", "instance.enrollments"):
            error = await graphql_error(client, read_key, CONNECTIONS[name], {"after": cursor})
            assert "cursor" in error["message"].lower() or "after" in error["message"], (
                stamp,
                name,
                error,
            )


async def test_search_with_a_nul_character_does_not_leak_sql(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """PostgreSQL text cannot hold U+0000: the search may match nothing or be refused as
    INVALID, but the driver's error and the SQL statement must not reach the client."""
    query = "query($s: String) { templates(filter: {search: $s}) { totalCount nodes { id } } }"
    body = await gql(client, read_key, query, {"s": "Tech\u0000"})
    dumped = json.dumps(body)
    for leak in ("asyncpg", "sqlalchemy", "SELECT", "campaign_templates"):
        assert leak not in dumped, body
    if body.get("errors"):
        assert body["errors"][0]["extensions"]["code"] == "INVALID", body
    else:
        assert body["data"]["templates"] == {"totalCount": 0, "nodes": []}


async def test_garbage_cursor_is_a_graphql_error_everywhere(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    for name, query in CONNECTIONS.items():
        error = await graphql_error(client, read_key, query, {"after": "garbage"})
        assert "cursor" in error["message"].lower() or "after" in error["message"], (name, error)


async def test_first_above_100_is_an_error_naming_the_limit(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    for name, document in CONNECTIONS.items():
        query = document.replace("(after: $after)", "(first: 101)")
        query = query.replace("query($after: String) ", "")
        error = await graphql_error(client, read_key, query)
        assert "100" in error["message"], (name, error)
        # 100 itself is allowed.
        await ok(client, read_key, query.replace("first: 101", "first: 100"))


async def test_negative_first_is_an_error(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    error = await graphql_error(client, read_key, "{ templates(first: -1) { totalCount } }")
    assert "first" in error["message"], error


async def test_first_zero_counts_without_nodes(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    empty = f"first: 0) {{ totalCount nodes {{ id }} edges {{ cursor }} {PAGE_INFO} }}"
    query = f"""query($id: ID!, $n: ID!) {{
      templates(filter: {{isActive: null}}, {empty}
      instances({empty}
      orphanedEvents({empty}
      template(id: $id) {{ instances({empty} }}
      instance(id: $n) {{ enrollments({empty} events({empty} }}
      enrollment(id: "{sid("enrollment:ada")}") {{ events({empty} }}
    }}"""
    data = await ok(
        client, read_key, query, {"id": sid("template:tech"), "n": sid("instance:tech-q4")}
    )
    counts = (
        await fetch(
            seeded,
            "SELECT (SELECT count(*) FROM campaign_templates) AS templates,"
            " (SELECT count(*) FROM campaign_instances) AS instances,"
            " (SELECT count(*) FROM campaign_events WHERE enrollment_id IS NULL) AS orphans,"
            " (SELECT count(*) FROM campaign_instances WHERE template_id = CAST(:t AS uuid))"
            "   AS template_instances,"
            " (SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid))"
            "   AS enrollments,"
            " (SELECT count(*) FROM campaign_events WHERE instance_id = CAST(:i AS uuid))"
            "   AS instance_events,"
            " (SELECT count(*) FROM campaign_events WHERE enrollment_id = CAST(:e AS uuid))"
            "   AS enrollment_events",
            t=sid("template:tech"),
            i=sid("instance:tech-q4"),
            e=sid("enrollment:ada"),
        )
    )[0]
    connections = {
        "templates": data["templates"],
        "instances": data["instances"],
        "orphans": data["orphanedEvents"],
        "template_instances": data["template"]["instances"],
        "enrollments": data["instance"]["enrollments"],
        "instance_events": data["instance"]["events"],
        "enrollment_events": data["enrollment"]["events"],
    }
    # The data is not trivial.
    assert counts["templates"] == 4
    assert counts["enrollment_events"] == 8
    for name, connection in connections.items():
        assert connection["nodes"] == [], name
        assert connection["edges"] == [], name
        assert connection["totalCount"] == counts[name], name
        info = connection["pageInfo"]
        assert info["startCursor"] is None, name
        assert info["endCursor"] is None, name
        assert info["hasPreviousPage"] is False, name
        # Relay: with `first`, hasNextPage is true when rows lie beyond the (empty) page.
        assert info["hasNextPage"] is (counts[name] > 0), name


ROOT_FIELDS = {
    "templates": "{ templates { totalCount nodes { id name } } }",
    "template": f'{{ template(id: "{sid("template:tech")}") {{ id name }} }}',
    "instances": "{ instances { totalCount nodes { id name } } }",
    "instance": f'{{ instance(id: "{sid("instance:tech-q4")}") {{ id name }} }}',
    "enrollment": f'{{ enrollment(id: "{sid("enrollment:ada")}") {{ id contactId }} }}',
    "orphanedEvents": "{ orphanedEvents { totalCount nodes { id } } }",
}


async def test_key_without_read_scope_is_forbidden(
    seeded: Starlette, client: httpx.AsyncClient
) -> None:
    for n, scopes in enumerate(({Scope.WEBHOOKS}, {Scope.WRITE}, {Scope.WRITE, Scope.WEBHOOKS})):
        async with seeded.state.sessionmaker.begin() as session:
            key = await create_api_key(session, f"no-read-{n}", frozenset(scopes))
        await _check_forbidden(client, key)


async def _check_forbidden(client: httpx.AsyncClient, key: str) -> None:
    for field, query in ROOT_FIELDS.items():
        body = await gql(client, key, query)
        assert body.get("errors"), (field, body)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, body)
        assert "read" in body["errors"][0]["message"], (field, body)
        assert body.get("data") is None or body["data"].get(field) is None, (field, body)
        dumped = json.dumps(body)
        for secret in ("Tech Company", "Tech Outreach", "hubspot-1001"):
            assert secret not in dumped, (field, body)


async def test_read_key_sees_every_root_field(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """The counterpart of the test above: the same documents succeed with the read scope, and
    answer what the database holds."""

    async def column(table: str, name: str) -> dict[str, Any]:
        rows = await fetch(seeded, f"SELECT id::text AS id, {name} AS value FROM {table}")
        return {row["id"]: row["value"] for row in rows}

    async def listed(table: str, where: str = "true") -> dict[str, Any]:
        order, names = await newest_first(seeded, table, where), await column(table, "name")
        return {"totalCount": len(order), "nodes": [{"id": i, "name": names[i]} for i in order]}

    tech, q4, ada = sid("template:tech"), sid("instance:tech-q4"), sid("enrollment:ada")
    orphans = await newest_first(seeded, "campaign_events", "enrollment_id IS NULL")
    expected = {
        "templates": await listed("campaign_templates", "is_active"),
        "template": {"id": tech, "name": (await column("campaign_templates", "name"))[tech]},
        "instances": await listed("campaign_instances"),
        "instance": {"id": q4, "name": (await column("campaign_instances", "name"))[q4]},
        "enrollment": {"id": ada, "contactId": (await column("enrollments", "contact_id"))[ada]},
        "orphanedEvents": {"totalCount": len(orphans), "nodes": [{"id": i} for i in orphans]},
    }
    assert set(expected) == set(ROOT_FIELDS)
    for field, query in ROOT_FIELDS.items():
        data = await ok(client, read_key, query)
        assert data[field] == expected[field], field
