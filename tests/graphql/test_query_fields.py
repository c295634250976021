"""Every field reachable from Query, read against the demo data and checked against its source.

Expected values come from the seed module's definitions (names, statuses, steps, events...) or
from rows read with SQL in the test (timestamps, anything a test changed); figures the service
computes (counters, rates, per-step and per-channel analytics) are derived here from the seed's
events with the rules of domain.md, never copied from the service.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from app.auth import create_api_key
from app.domain.enums import Scope
from app.seed import (
    SEED_ACTOR,
    _email_steps,
    _enrollments,
    _events,
    _instances,
    _linkedin_steps,
    _templates,
    _transitions,
    seed,
    seed_id,
)
from tests.graphql_client import gql

# The seed's definition helpers take "now" only to place timestamps; timestamps are read back
# with SQL, so any value will do here.
DEFS_NOW = datetime.now(UTC)

TEMPLATE_FIELDS = (
    "id name description type pathType icpProfileId settings createdBy isActive createdAt updatedAt"
)
EMAIL_STEP_FIELDS = "id stepNumber subject body delayHours abVariant isActive createdAt updatedAt"
LINKEDIN_STEP_FIELDS = "id stepNumber action message delayHours isActive createdAt updatedAt"
INSTANCE_FIELDS = (
    "id name status providerConfig startedAt pausedAt completedAt failureReason createdAt updatedAt"
)
ENROLLMENT_FIELDS = (
    "id contactId status currentStep nextActionAt metadata enrolledAt completedAt unsubscribedAt"
)
EVENT_FIELDS = "id eventType channel provider providerEventId stepNumber occurredAt metadata"
METRIC_NAMES = (
    "enrolled",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "unsubscribed",
)
METRICS = " ".join(METRIC_NAMES)
RATES = "deliveryRate openRate clickRate replyRate bounceRate unsubscribeRate"
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

# domain.md, "What an event does": the counter each event type feeds.
COUNTER_OF = {
    "SENT": "sent",
    "MESSAGE_SENT": "sent",
    "VOICE_MESSAGE_SENT": "sent",
    "CONNECTION_REQUESTED": "sent",
    "PROFILE_VISITED": "sent",
    "DELIVERED": "delivered",
    "OPENED": "opened",
    "CLICKED": "clicked",
    "REPLIED": "replied",
    "BOUNCED": "bounced",
    "UNSUBSCRIBED": "unsubscribed",
    "SPAM_COMPLAINT": "unsubscribed",
}

TEMPLATE_SQL = (
    "SELECT id::text AS id, name, description, type::text AS type, path_type::text AS path_type,"
    " icp_profile_id::text AS icp_profile_id, settings, created_by, is_active, created_at,"
    " updated_at FROM campaign_templates"
)
INSTANCE_SQL = (
    "SELECT id::text AS id, template_id::text AS template_id, name, status::text AS status,"
    " provider_config, started_at, paused_at, completed_at, failure_reason, created_at,"
    " updated_at FROM campaign_instances"
)
ENROLLMENT_SQL = (
    "SELECT id::text AS id, instance_id::text AS instance_id, contact_id, status::text AS status,"
    " current_step, next_action_at, metadata, enrolled_at, completed_at, unsubscribed_at"
    " FROM enrollments"
)
EVENT_SQL = (
    "SELECT id::text AS id, enrollment_id::text AS enrollment_id, instance_id::text AS instance_id,"
    " event_type::text AS event_type, channel::text AS channel, provider::text AS provider,"
    " provider_event_id, step_number, occurred_at, metadata FROM campaign_events"
)


# --------------------------------------------------------------------------- helpers


def sid(name: str) -> str:
    return str(seed_id(name))


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def parse_time(value: Any) -> datetime:
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"DateTime without a time zone: {value}"
    return parsed


def same(node: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected key has its value; datetimes are compared as instants."""
    for key, want in expected.items():
        assert key in node, (key, node)
        got = node[key]
        if isinstance(want, datetime):
            assert got is not None, (key, node)
            assert parse_time(got) == want, (key, got, want)
        else:
            assert got == want, (key, got, want, node.get("id"))


async def fetch(app: Starlette, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with app.state.engine.connect() as connection:
        result = await connection.execute(text(sql), params)
        return [dict(row) for row in result.mappings()]


async def run(app: Starlette, sql: str, **params: Any) -> None:
    async with app.state.engine.begin() as connection:
        await connection.execute(text(sql), params)


async def ok(
    client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gql(client, key, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def graphql_error(
    client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The first GraphQL error of a 200 response that must not leak internals."""
    body = await gql(client, key, query, variables)
    assert body.get("errors"), body
    dumped = json.dumps(body)
    for leak in ("Traceback", 'File "', "asyncpg", "sqlalchemy", "psycopg"):
        assert leak not in dumped, body
    first: dict[str, Any] = body["errors"][0]
    assert isinstance(first["message"], str), first
    assert len(first["message"].strip()) > 5, first
    assert "stacktrace" not in json.dumps(first.get("extensions") or {}).lower(), first
    return first


def template_expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "type": row["type"].upper(),
        "pathType": row["path_type"].upper(),
        "icpProfileId": row["icp_profile_id"],
        "settings": as_json(row["settings"]),
        "createdBy": row["created_by"],
        "isActive": row["is_active"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def instance_expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"].upper(),
        "providerConfig": as_json(row["provider_config"]),
        "startedAt": row["started_at"],
        "pausedAt": row["paused_at"],
        "completedAt": row["completed_at"],
        "failureReason": row["failure_reason"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def enrollment_expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "contactId": row["contact_id"],
        "status": row["status"].upper(),
        "currentStep": row["current_step"],
        "nextActionAt": row["next_action_at"],
        "metadata": as_json(row["metadata"]),
        "enrolledAt": row["enrolled_at"],
        "completedAt": row["completed_at"],
        "unsubscribedAt": row["unsubscribed_at"],
    }


def event_expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "eventType": row["event_type"].upper(),
        "channel": row["channel"].upper(),
        "provider": row["provider"].upper(),
        "providerEventId": row["provider_event_id"],
        "stepNumber": row["step_number"],
        "occurredAt": row["occurred_at"],
        "metadata": as_json(row["metadata"]),
    }


def ids(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["id"] for node in nodes]


def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def rates_of(m: dict[str, int]) -> dict[str, float]:
    """domain.md "Analytics": each rate is 0 when its denominator is 0."""
    return {
        "deliveryRate": ratio(m["delivered"], m["sent"]),
        "openRate": ratio(m["opened"], m["delivered"]),
        "clickRate": ratio(m["clicked"], m["delivered"]),
        "replyRate": ratio(m["replied"], m["sent"]),
        "bounceRate": ratio(m["bounced"], m["sent"]),
        "unsubscribeRate": ratio(m["unsubscribed"], m["delivered"]),
    }


def assert_rates(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9), (name, got, want)


async def newest_first(app: Starlette, table: str, where: str = "true", **params: Any) -> list[str]:
    """Ids in the contract's order, read with SQL: newest first, id breaking ties."""
    sort = "occurred_at" if table == "campaign_events" else "created_at"
    sql = f"SELECT id::text AS id FROM {table} WHERE {where} ORDER BY {sort} DESC, id DESC"
    return [row["id"] for row in await fetch(app, sql, **params)]


@pytest.fixture
async def seeded(app: Starlette) -> Starlette:
    async with app.state.sessionmaker.begin() as session:
        assert await seed(session) is True
    return app


# --------------------------------------------------------------------------- templates


async def test_templates_and_steps_match_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""
    {{ templates(filter: {{isActive: null}}) {{ totalCount nodes {{ {TEMPLATE_FIELDS}
        emailSteps {{ {EMAIL_STEP_FIELDS} }} linkedinSteps {{ {LINKEDIN_STEP_FIELDS} }} }} }} }}
    """
    result = (await ok(client, read_key, query))["templates"]
    definitions = {str(t["id"]): t for t in _templates()}
    assert result["totalCount"] == len(definitions)
    assert ids(result["nodes"]) == await newest_first(seeded, "campaign_templates")
    rows = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}
    email_rows = {
        r["key"]: r
        for r in await fetch(
            seeded, "SELECT id::text AS key, created_at, updated_at FROM email_steps"
        )
    }
    linkedin_rows = {
        r["key"]: r
        for r in await fetch(
            seeded, "SELECT id::text AS key, created_at, updated_at FROM linkedin_steps"
        )
    }
    for node in result["nodes"]:
        d = definitions[node["id"]]
        same(node, template_expected(rows[node["id"]]))
        same(
            node,
            {
                "name": d["name"],
                "description": d["description"],
                "type": d["type"].name,
                "pathType": d["path_type"].name,
                "settings": d["settings"],
                "isActive": d.get("is_active", True),
                "icpProfileId": None,
                "createdBy": None,
            },
        )
        want_email = sorted(
            (s for s in _email_steps() if s["template_id"] == d["id"]),
            key=lambda s: s["step_number"],
        )
        assert [s["id"] for s in node["emailSteps"]] == [str(s["id"]) for s in want_email]
        for got, s in zip(node["emailSteps"], want_email, strict=True):
            row = email_rows[str(s["id"])]
            same(
                got,
                {
                    "stepNumber": s["step_number"],
                    "subject": s["subject"],
                    "body": s["body"],
                    "delayHours": s["delay_hours"],
                    "abVariant": s["ab_variant"],
                    "isActive": True,
                    "createdAt": row["created_at"],
                    "updatedAt": row["updated_at"],
                },
            )
        want_linkedin = sorted(
            (s for s in _linkedin_steps() if s["template_id"] == d["id"]),
            key=lambda s: s["step_number"],
        )
        assert [s["id"] for s in node["linkedinSteps"]] == [str(s["id"]) for s in want_linkedin]
        for got, s in zip(node["linkedinSteps"], want_linkedin, strict=True):
            row = linkedin_rows[str(s["id"])]
            same(
                got,
                {
                    "stepNumber": s["step_number"],
                    "action": s["action"].name,
                    "message": s["message"],
                    "delayHours": s["delay_hours"],
                    "isActive": True,
                    "createdAt": row["created_at"],
                    "updatedAt": row["updated_at"],
                },
            )
    # The seed really exercises both step kinds, nullable fields and an archived template.
    assert any(n["emailSteps"] and n["linkedinSteps"] for n in result["nodes"])
    assert any(s["subject"] is None for n in result["nodes"] for s in n["emailSteps"])
    assert any(not n["isActive"] for n in result["nodes"])


ACTIVE = ["tech", "founders", "linkedin"]


TEMPLATE_FILTER_CASES: list[tuple[dict[str, Any] | None, list[str]]] = [
    (None, ACTIVE),
    ({}, ACTIVE),
    ({"isActive": True}, ACTIVE),
    ({"isActive": False}, ["ai"]),
    ({"isActive": None}, [*ACTIVE, "ai"]),
    ({"type": "EMAIL"}, ["tech"]),
    ({"type": "EMAIL", "isActive": None}, ["tech", "ai"]),
    ({"type": "EMAIL", "isActive": False}, ["ai"]),
    ({"type": "LINKEDIN"}, ["linkedin"]),
    ({"type": "MULTI_CHANNEL"}, ["founders"]),
    ({"pathType": "STRUCTURED"}, ACTIVE),
    ({"pathType": "DYNAMIC_AI"}, []),
    ({"pathType": "DYNAMIC_AI", "isActive": None}, ["ai"]),
    ({"type": "LINKEDIN", "pathType": "DYNAMIC_AI", "isActive": None}, []),
    ({"search": "outreach"}, ["tech"]),
    ({"search": "OUTREACH"}, ["tech"]),
    ({"search": "oUtReAcH"}, ["tech"]),
    ({"search": "Tech Company Outreach"}, ["tech"]),
    ({"search": "warm"}, ["linkedin"]),
    ({"search": "nurture"}, []),
    ({"search": "NURTURE", "isActive": None}, ["ai"]),
    ({"search": "o", "type": "MULTI_CHANNEL"}, ["founders"]),
    ({"search": "no such template"}, []),
]


async def test_template_filter(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    query = """query($filter: TemplateFilter) {
      templates(filter: $filter) { totalCount nodes { id name } edges { node { id } } } }"""
    order = await newest_first(seeded, "campaign_templates")
    for template_filter, expected in TEMPLATE_FILTER_CASES:
        variables = {} if template_filter is None else {"filter": template_filter}
        result = (await ok(client, read_key, query, variables))["templates"]
        want = [i for i in order if i in {sid(f"template:{k}") for k in expected}]
        assert len(want) == len(expected)
        assert ids(result["nodes"]) == want, template_filter
        assert [e["node"]["id"] for e in result["edges"]] == want, template_filter
        assert result["totalCount"] == len(want), template_filter


async def test_search_treats_like_wildcards_and_backslash_literally(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    names = [
        "100% Growth",
        "1000 Growth",
        "snake_case plan",
        "snakeXcase plan",
        "back\\slash",
        "backslash",
        "Quote 'single'",
    ]
    for name in names:
        await run(
            seeded,
            "INSERT INTO campaign_templates (name, type) VALUES (:name, 'email')",
            name=name,
        )
    query = """query($s: String) {
      templates(first: 100, filter: {search: $s}) { totalCount nodes { name } } }"""
    cases = {
        "100%": ["100% Growth"],
        "%": ["100% Growth"],
        "0% g": ["100% Growth"],
        "e_c": ["snake_case plan"],
        "_": ["snake_case plan"],
        "SNAKE_": ["snake_case plan"],
        "\\": ["back\\slash"],
        "k\\s": ["back\\slash"],
        "%%": [],
        "__": [],
        "'single'": ["Quote 'single'"],
    }
    for term, want in cases.items():
        result = (await ok(client, read_key, query, {"s": term}))["templates"]
        assert sorted(n["name"] for n in result["nodes"]) == sorted(want), term
        assert result["totalCount"] == len(want), term
    # An empty search filters nothing.
    total = len(await fetch(seeded, "SELECT id FROM campaign_templates WHERE is_active"))
    result = (await ok(client, read_key, query, {"s": ""}))["templates"]
    assert result["totalCount"] == total == len(result["nodes"])


async def test_template_by_id(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    icp = str(uuid.uuid4())
    await run(
        seeded,
        "UPDATE campaign_templates SET icp_profile_id = CAST(:icp AS uuid), created_by = :by"
        " WHERE id = CAST(:id AS uuid)",
        icp=icp,
        by="ops@example.com",
        id=sid("template:tech"),
    )
    query = f"query($id: ID!) {{ template(id: $id) {{ {TEMPLATE_FIELDS} }} }}"
    rows = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}

    tech = (await ok(client, read_key, query, {"id": sid("template:tech")}))["template"]
    same(tech, template_expected(rows[sid("template:tech")]))
    assert tech["icpProfileId"] == icp
    assert tech["createdBy"] == "ops@example.com"
    assert tech["name"] == "Tech Company Outreach"

    # An id in another spelling (upper case) names the same template.
    upper = await ok(client, read_key, query, {"id": sid("template:tech").upper()})
    assert upper["template"]["id"] == sid("template:tech")

    # Archived templates are still readable by id.
    archived = (await ok(client, read_key, query, {"id": sid("template:ai")}))["template"]
    same(archived, template_expected(rows[sid("template:ai")]))
    assert archived["isActive"] is False

    for unknown in (sid("template:nope"), str(uuid.uuid4()), sid("instance:tech-q4")):
        assert (await ok(client, read_key, query, {"id": unknown})) == {"template": None}


async def test_malformed_id_is_a_readable_graphql_error(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    queries = [
        "query($id: ID!) { template(id: $id) { id } }",
        "query($id: ID!) { instance(id: $id) { id } }",
        "query($id: ID!) { enrollment(id: $id) { id } }",
        "query($id: ID!) { instances(filter: {templateId: $id}) { totalCount } }",
    ]
    for query in queries:
        for bad_id in ("garbage", "", "1234", "6f1c3a52-4d0e-4b8e-9a57-2f9c1d7e8b1"):
            error = await graphql_error(client, read_key, query, {"id": bad_id})
            assert "id" in error["message"].lower(), (query, bad_id, error)


async def test_inactive_steps_are_listed_only_on_request(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    inactive_email = sid(f"email:{seed_id('template:tech')}:2")
    inactive_linkedin = sid(f"linkedin:{seed_id('template:founders')}:3")
    await run(
        seeded,
        "UPDATE email_steps SET is_active = false WHERE id = CAST(:id AS uuid)",
        id=inactive_email,
    )
    await run(
        seeded,
        "UPDATE linkedin_steps SET is_active = false WHERE id = CAST(:id AS uuid)",
        id=inactive_linkedin,
    )
    query = """query($t: ID!, $f: ID!) {
      tech: template(id: $t) {
        emailSteps { id stepNumber isActive }
        off: emailSteps(includeInactive: false) { id stepNumber isActive }
        all: emailSteps(includeInactive: true) { id stepNumber isActive updatedAt }
      }
      founders: template(id: $f) {
        linkedinSteps { id stepNumber isActive }
        off: linkedinSteps(includeInactive: false) { id stepNumber isActive }
        all: linkedinSteps(includeInactive: true) { id stepNumber isActive action updatedAt }
        emailSteps(includeInactive: true) { id isActive }
      }
    }"""
    data = await ok(
        client, read_key, query, {"t": sid("template:tech"), "f": sid("template:founders")}
    )
    tech_id, founders_id = seed_id("template:tech"), seed_id("template:founders")
    tech, founders = data["tech"], data["founders"]

    active_email = [sid(f"email:{tech_id}:{n}") for n in (1, 3)]
    assert ids(tech["emailSteps"]) == active_email
    assert ids(tech["off"]) == active_email
    assert all(s["isActive"] for s in tech["emailSteps"])
    assert ids(tech["all"]) == [sid(f"email:{tech_id}:{n}") for n in (1, 2, 3)]
    assert [s["stepNumber"] for s in tech["all"]] == [1, 2, 3]
    assert [s["isActive"] for s in tech["all"]] == [True, False, True]
    row = (
        await fetch(
            seeded,
            "SELECT updated_at FROM email_steps WHERE id = CAST(:id AS uuid)",
            id=inactive_email,
        )
    )[0]
    assert parse_time(tech["all"][1]["updatedAt"]) == row["updated_at"]

    active_linkedin = [sid(f"linkedin:{founders_id}:{n}") for n in (1, 2)]
    assert ids(founders["linkedinSteps"]) == active_linkedin
    assert ids(founders["off"]) == active_linkedin
    assert [(s["stepNumber"], s["isActive"], s["action"]) for s in founders["all"]] == [
        (1, True, "PROFILE_VISIT"),
        (2, True, "CONNECTION_REQUEST"),
        (3, False, "MESSAGE"),
    ]
    # Deactivating a LinkedIn step leaves the email steps alone.
    assert founders["emailSteps"] == [{"id": sid(f"email:{founders_id}:1"), "isActive": True}]


async def test_template_instances_with_status(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!, $status: InstanceStatus) {{ template(id: $id) {{
      instances(status: $status) {{ totalCount nodes {{ {INSTANCE_FIELDS} }} {PAGE_INFO} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    by_template: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in _instances(DEFS_NOW):
        by_template[str(d["template_id"])].append(d)
    for key in ("tech", "founders", "linkedin", "ai"):
        template_id = sid(f"template:{key}")
        defs = by_template.get(template_id, [])
        result = (await ok(client, read_key, query, {"id": template_id}))["template"]["instances"]
        assert sorted(ids(result["nodes"])) == sorted(str(d["id"]) for d in defs)
        assert result["totalCount"] == len(defs)
        for node in result["nodes"]:
            same(node, instance_expected(rows[node["id"]]))
        assert result["pageInfo"]["hasNextPage"] is False
        assert result["pageInfo"]["hasPreviousPage"] is False
        for d in defs:
            for status in ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED"):
                variables = {"id": template_id, "status": status}
                filtered = (await ok(client, read_key, query, variables))["template"]["instances"]
                want = [str(d["id"])] if d["status"].name == status else []
                assert ids(filtered["nodes"]) == want, (key, status)
                assert filtered["totalCount"] == len(want)


# --------------------------------------------------------------------------- instances


async def test_instances_root_and_filter(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($filter: InstanceFilter) {{
      instances(filter: $filter) {{ totalCount nodes {{ {INSTANCE_FIELDS} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    order = await newest_first(seeded, "campaign_instances")
    definitions = {str(d["id"]): d for d in _instances(DEFS_NOW)}
    assert set(order) == set(definitions)

    everything = (await ok(client, read_key, query))["instances"]
    assert ids(everything["nodes"]) == order
    assert everything["totalCount"] == len(order)
    for node in everything["nodes"]:
        d = definitions[node["id"]]
        same(node, instance_expected(rows[node["id"]]))
        same(
            node,
            {
                "name": d["name"],
                "status": d["status"].name,
                "providerConfig": d["provider_config"],
                "failureReason": None,
                "completedAt": None,
            },
        )
        assert (node["startedAt"] is None) == ("started_at" not in d)
        assert (node["pausedAt"] is None) == ("paused_at" not in d)

    def expect(pred: Any) -> list[str]:
        return [i for i in order if pred(definitions[i])]

    for status in ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED"):
        result = (await ok(client, read_key, query, {"filter": {"status": status}}))["instances"]
        want = expect(lambda d, s=status: d["status"].name == s)
        assert ids(result["nodes"]) == want, status
        assert result["totalCount"] == len(want)
    for key in ("tech", "founders", "linkedin", "ai"):
        template_id = sid(f"template:{key}")
        result = await ok(client, read_key, query, {"filter": {"templateId": template_id}})
        want = expect(lambda d, t=template_id: str(d["template_id"]) == t)
        assert ids(result["instances"]["nodes"]) == want, key
        assert result["instances"]["totalCount"] == len(want)
    both = {"templateId": sid("template:founders"), "status": "PAUSED"}
    result = (await ok(client, read_key, query, {"filter": both}))["instances"]
    assert ids(result["nodes"]) == [sid("instance:founders-nov")]
    both["status"] = "ACTIVE"
    result = (await ok(client, read_key, query, {"filter": both}))["instances"]
    assert result == {"totalCount": 0, "nodes": []}
    unknown = {"templateId": str(uuid.uuid4())}
    result = (await ok(client, read_key, query, {"filter": unknown}))["instances"]
    assert result == {"totalCount": 0, "nodes": []}


async def test_instance_by_id_reads_every_scalar(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    # Give the instances the statuses the seed lacks: completed, and failed with a reason.
    await run(
        seeded,
        "UPDATE campaign_instances SET status = 'completed', completed_at = now() - interval '1 h'"
        " WHERE id = CAST(:id AS uuid)",
        id=sid("instance:founders-nov"),
    )
    await run(
        seeded,
        "UPDATE campaign_instances SET status = 'failed', failure_reason = :reason,"
        ' provider_config = \'{"nested": {"list": [1, 2.5, null, true]}, "s": "x"}\''
        " WHERE id = CAST(:id AS uuid)",
        reason="LinkedIn session expired",
        id=sid("instance:warm-draft"),
    )
    query = f"""query($id: ID!) {{ instance(id: $id) {{ {INSTANCE_FIELDS}
      template {{ {TEMPLATE_FIELDS} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    templates = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}
    for d in _instances(DEFS_NOW):
        node = (await ok(client, read_key, query, {"id": str(d["id"])}))["instance"]
        row = rows[str(d["id"])]
        same(node, instance_expected(row))
        same(node["template"], template_expected(templates[str(d["template_id"])]))
    founders = await ok(client, read_key, query, {"id": sid("instance:founders-nov")})
    assert founders["instance"]["status"] == "COMPLETED"
    assert founders["instance"]["completedAt"] is not None
    warm = (await ok(client, read_key, query, {"id": sid("instance:warm-draft")}))["instance"]
    assert warm["status"] == "FAILED"
    assert warm["failureReason"] == "LinkedIn session expired"
    assert warm["providerConfig"] == {"nested": {"list": [1, 2.5, None, True]}, "s": "x"}
    assert warm["template"]["id"] == sid("template:linkedin")
    for unknown in (sid("instance:nope"), sid("template:tech")):
        assert await ok(client, read_key, query, {"id": unknown}) == {"instance": None}


def seed_figures(instance_key: str) -> dict[str, Any]:
    """Counters, per-step and per-channel figures of one seeded instance, from the seed's own
    event list and the rules of domain.md (unique outcomes per enrollment, channel and step)."""
    instance_id = seed_id(f"instance:{instance_key}")
    enrolled = sum(1 for e in _enrollments(DEFS_NOW) if e["instance_id"] == instance_id)
    events = [e for e in _events(DEFS_NOW) if e["instance_id"] == instance_id]
    outcomes: set[tuple[str, uuid.UUID, str, int]] = set()
    groups: set[tuple[str, int]] = set()
    for e in events:
        step = e["step_number"] or 0
        groups.add((e["channel"].name, step))
        counter = COUNTER_OF.get(e["event_type"].name)
        if counter:
            outcomes.add((counter, e["enrollment_id"], e["channel"].name, step))

    def metrics(pred: Any) -> dict[str, int]:
        counts = dict.fromkeys(METRIC_NAMES, 0) | {"enrolled": enrolled}
        for counter, _, channel, step in outcomes:
            if pred(channel, step):
                counts[counter] += 1
        return counts

    return {
        "metrics": metrics(lambda c, s: True),
        "byStep": {(c, s): metrics(lambda c2, s2, c=c, s=s: (c2, s2) == (c, s)) for c, s in groups},
        "byChannel": {
            c: metrics(lambda c2, s2, c=c: c2 == c) for c in {channel for channel, _ in groups}
        },
    }


PERFORMANCE_QUERY = f"""query($id: ID!) {{ instance(id: $id) {{
  metrics {{ {METRICS} }}
  performance {{
    metrics {{ {METRICS} }} rates {{ {RATES} }}
    byStep {{ channel stepNumber metrics {{ {METRICS} }} rates {{ {RATES} }} }}
    byChannel {{ channel metrics {{ {METRICS} }} rates {{ {RATES} }} }}
  }} }} }}"""

COUNTERS_SQL = (
    "SELECT i.total_enrolled AS enrolled,"
    " i.total_sent + coalesce(sum(s.sent), 0) AS sent,"
    " i.total_delivered + coalesce(sum(s.delivered), 0) AS delivered,"
    " i.total_opened + coalesce(sum(s.opened), 0) AS opened,"
    " i.total_clicked + coalesce(sum(s.clicked), 0) AS clicked,"
    " i.total_replied + coalesce(sum(s.replied), 0) AS replied,"
    " i.total_bounced + coalesce(sum(s.bounced), 0) AS bounced,"
    " i.total_unsubscribed + coalesce(sum(s.unsubscribed), 0) AS unsubscribed"
    " FROM campaign_instances i LEFT JOIN instance_counter_shards s ON s.instance_id = i.id"
    " WHERE i.id = CAST(:id AS uuid) GROUP BY i.id"
)


async def stored_counters(app: Starlette, instance_id: str) -> dict[str, int]:
    row = (await fetch(app, COUNTERS_SQL, id=instance_id))[0]
    return {name: int(row[name]) for name in METRIC_NAMES}


async def test_metrics_and_performance(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    for instance_key in ("tech-q4", "founders-nov", "warm-draft"):
        await _check_figures(seeded, client, read_key, instance_key)


async def _check_figures(
    app: Starlette, client: httpx.AsyncClient, read_key: str, instance_key: str
) -> None:
    instance_id = sid(f"instance:{instance_key}")
    want = seed_figures(instance_key)
    counters = await stored_counters(app, instance_id)
    assert counters == want["metrics"], "the seed's stored counters disagree with its events"

    instance = (await ok(client, read_key, PERFORMANCE_QUERY, {"id": instance_id}))["instance"]
    performance = instance["performance"]
    assert instance["metrics"] == want["metrics"]
    assert performance["metrics"] == want["metrics"]
    assert_rates(performance["rates"], rates_of(want["metrics"]))

    by_step = {(s["channel"], s["stepNumber"]): s for s in performance["byStep"]}
    assert len(by_step) == len(performance["byStep"]), "a (channel, step) is listed twice"
    assert set(by_step) == set(want["byStep"])
    for key, metrics in want["byStep"].items():
        assert by_step[key]["metrics"] == metrics, key
        assert_rates(by_step[key]["rates"], rates_of(metrics))

    by_channel = {c["channel"]: c for c in performance["byChannel"]}
    assert len(by_channel) == len(performance["byChannel"]), "a channel is listed twice"
    assert set(by_channel) == set(want["byChannel"])
    for channel, metrics in want["byChannel"].items():
        assert by_channel[channel]["metrics"] == metrics, channel
        assert_rates(by_channel[channel]["rates"], rates_of(metrics))


async def test_figures_of_the_seed_cover_the_interesting_cases() -> None:
    """Guards the test above: it must see non-trivial rates and zero denominators."""
    tech, founders, draft = (seed_figures(k) for k in ("tech-q4", "founders-nov", "warm-draft"))
    assert 0 < rates_of(tech["metrics"])["openRate"] < 1
    assert rates_of(tech["metrics"])["replyRate"] > 0
    assert founders["metrics"]["delivered"] == 0 < founders["metrics"]["opened"]
    assert rates_of(founders["metrics"])["openRate"] == 0.0
    assert set(founders["byChannel"]) == {"EMAIL", "LINKEDIN"}
    assert draft["metrics"]["sent"] == 0
    assert not draft["byStep"]


async def test_metrics_include_pending_shard_increments(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    instance_id = sid("instance:tech-q4")
    await run(
        seeded,
        "INSERT INTO instance_counter_shards (instance_id, shard, sent, delivered, opened,"
        " clicked, replied, bounced, unsubscribed) VALUES"
        " (CAST(:id AS uuid), 0, 2, 1, 1, 0, 0, 1, 0),"
        " (CAST(:id AS uuid), 1, 1, 1, 0, 1, 1, 0, 1)",
        id=instance_id,
    )
    counters = await stored_counters(seeded, instance_id)
    seeded_counters = seed_figures("tech-q4")["metrics"]
    assert counters["sent"] == seeded_counters["sent"] + 3  # the shards really add something
    instance = (await ok(client, read_key, PERFORMANCE_QUERY, {"id": instance_id}))["instance"]
    assert instance["metrics"] == counters
    assert instance["performance"]["metrics"] == counters
    assert_rates(instance["performance"]["rates"], rates_of(counters))
    # Per-step figures come from the events, which the shards do not change.
    by_step = {
        (s["channel"], s["stepNumber"]): s["metrics"] for s in instance["performance"]["byStep"]
    }
    assert by_step == seed_figures("tech-q4")["byStep"]


async def test_transitions_oldest_first(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    await run(
        seeded,
        "UPDATE instance_transitions SET reason = 'holiday freeze', actor = 'ops@example.com'"
        " WHERE id = CAST(:id AS uuid)",
        id=sid("transition:founders-nov:paused"),
    )
    query = """query($id: ID!) { instance(id: $id) {
      transitions { fromStatus toStatus actor reason at } } }"""
    rows = await fetch(
        seeded,
        "SELECT id::text AS id, instance_id::text AS instance_id, at FROM instance_transitions",
    )
    at = {r["id"]: r["at"] for r in rows}
    definitions = _transitions(DEFS_NOW)
    for instance in _instances(DEFS_NOW):
        defs = [d for d in definitions if d["instance_id"] == instance["id"]]
        defs.sort(key=lambda d: at[str(d["id"])])  # oldest first
        assert len({at[str(d["id"])] for d in defs}) == len(defs)  # no ties in the seed
        got = (await ok(client, read_key, query, {"id": str(instance["id"])}))["instance"]
        assert len(got["transitions"]) == len(defs)
        for node, d in zip(got["transitions"], defs, strict=True):
            changed = d["id"] == seed_id("transition:founders-nov:paused")
            same(
                node,
                {
                    "fromStatus": d["from_status"].name if d["from_status"] else None,
                    "toStatus": d["to_status"].name,
                    "actor": "ops@example.com" if changed else SEED_ACTOR,
                    "reason": "holiday freeze" if changed else None,
                    "at": at[str(d["id"])],
                },
            )
    founders = await ok(client, read_key, query, {"id": sid("instance:founders-nov")})
    assert [(t["fromStatus"], t["toStatus"]) for t in founders["instance"]["transitions"]] == [
        (None, "DRAFT"),
        ("DRAFT", "ACTIVE"),
        ("ACTIVE", "PAUSED"),
    ]


# --------------------------------------------------------------------------- enrollments


async def test_instance_enrollments_with_status(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!, $status: EnrollmentStatus) {{ instance(id: $id) {{
      enrollments(status: $status) {{ totalCount nodes {{ {ENROLLMENT_FIELDS} instance {{ id }} }}
        edges {{ cursor node {{ id }} }} {PAGE_INFO} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, ENROLLMENT_SQL)}
    definitions = {str(e["id"]): e for e in _enrollments(DEFS_NOW)}
    statuses = ("ENROLLED", "ACTIVE", "PAUSED", "COMPLETED", "REPLIED", "UNSUBSCRIBED")
    statuses = (*statuses, "BOUNCED", "FAILED", "REMOVED")
    for instance in _instances(DEFS_NOW):
        instance_id = str(instance["id"])
        order = await newest_first(
            seeded, "enrollments", "instance_id = CAST(:id AS uuid)", id=instance_id
        )
        assert set(order) == {
            i for i, e in definitions.items() if e["instance_id"] == instance["id"]
        }
        result = (await ok(client, read_key, query, {"id": instance_id}))["instance"]["enrollments"]
        assert ids(result["nodes"]) == order
        assert result["totalCount"] == len(order)
        assert [e["node"]["id"] for e in result["edges"]] == order
        for node in result["nodes"]:
            d = definitions[node["id"]]
            same(node, enrollment_expected(rows[node["id"]]))
            same(
                node,
                {
                    "contactId": d["contact_id"],
                    "status": d["status"].name,
                    "currentStep": d["current_step"],
                    "metadata": d["metadata_"],
                    "instance": {"id": instance_id},
                },
            )
        for status in statuses:
            variables = {"id": instance_id, "status": status}
            filtered = (await ok(client, read_key, query, variables))["instance"]["enrollments"]
            want = [i for i in order if definitions[i]["status"].name == status]
            assert ids(filtered["nodes"]) == want, (instance_id, status)
            assert filtered["totalCount"] == len(want)


async def test_enrollment_by_id_and_its_events(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    grace = sid("enrollment:grace")
    await run(
        seeded,
        "UPDATE enrollments SET status = 'unsubscribed', unsubscribed_at = now(),"
        " completed_at = now() - interval '1 minute', next_action_at = NULL"
        " WHERE id = CAST(:id AS uuid)",
        id=grace,
    )
    query = f"""query($id: ID!, $type: EventType) {{ enrollment(id: $id) {{ {ENROLLMENT_FIELDS}
      instance {{ {INSTANCE_FIELDS} metrics {{ {METRICS} }} }}
      events(first: 100, eventType: $type) {{ totalCount nodes {{ {EVENT_FIELDS}
        enrollment {{ id }} instance {{ id }} }} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, ENROLLMENT_SQL)}
    instances = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    events = {r["id"]: r for r in await fetch(seeded, EVENT_SQL)}

    node = (await ok(client, read_key, query, {"id": grace}))["enrollment"]
    same(node, enrollment_expected(rows[grace]))
    assert node["status"] == "UNSUBSCRIBED"
    assert node["unsubscribedAt"] is not None
    assert node["completedAt"] is not None
    assert node["nextActionAt"] is None

    for d in _enrollments(DEFS_NOW):
        enrollment_id, instance_id = str(d["id"]), str(d["instance_id"])
        node = (await ok(client, read_key, query, {"id": enrollment_id}))["enrollment"]
        same(node, enrollment_expected(rows[enrollment_id]))
        same(node["instance"], instance_expected(instances[instance_id]))
        assert (
            node["instance"]["metrics"]
            == seed_figures(
                next(k for k in ("tech-q4", "founders-nov") if sid(f"instance:{k}") == instance_id)
            )["metrics"]
        )
        order = await newest_first(
            seeded, "campaign_events", "enrollment_id = CAST(:id AS uuid)", id=enrollment_id
        )
        assert ids(node["events"]["nodes"]) == order
        assert node["events"]["totalCount"] == len(order)
        for event in node["events"]["nodes"]:
            same(event, event_expected(events[event["id"]]))
            assert event["enrollment"] == {"id": enrollment_id}
            assert event["instance"] == {"id": instance_id}
        for event_type in sorted({e["event_type"].name for e in _events(DEFS_NOW)} | {"BOUNCED"}):
            variables = {"id": enrollment_id, "type": event_type}
            filtered = (await ok(client, read_key, query, variables))["enrollment"]["events"]
            want = [i for i in order if events[i]["event_type"].upper() == event_type]
            assert ids(filtered["nodes"]) == want, (enrollment_id, event_type)
            assert filtered["totalCount"] == len(want)

    ada = await ok(client, read_key, query, {"id": sid("enrollment:ada"), "type": "OPENED"})
    assert ada["enrollment"]["events"]["totalCount"] == 2  # two opens of the same email
    for unknown in (sid("enrollment:nobody"), sid("instance:tech-q4")):
        assert await ok(client, read_key, query, {"id": unknown}) == {"enrollment": None}


# --------------------------------------------------------------------------- events


async def test_events_match_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!) {{ instance(id: $id) {{ events(first: 100) {{ totalCount
      nodes {{ {EVENT_FIELDS} enrollment {{ id contactId }} instance {{ id name }} }} }} }} }}"""
    occurred = {r["id"]: r["occurred_at"] for r in await fetch(seeded, EVENT_SQL)}
    enrollments = {e["id"]: e for e in _enrollments(DEFS_NOW)}
    instances = {i["id"]: i for i in _instances(DEFS_NOW)}
    definitions = _events(DEFS_NOW)
    seen = 0
    for instance in instances.values():
        defs = {str(e["id"]): e for e in definitions if e["instance_id"] == instance["id"]}
        result = await ok(client, read_key, query, {"id": str(instance["id"])})
        events = result["instance"]["events"]
        assert events["totalCount"] == len(defs)
        assert ids(events["nodes"]) == await newest_first(
            seeded, "campaign_events", "instance_id = CAST(:id AS uuid)", id=str(instance["id"])
        )
        for node in events["nodes"]:
            d = defs[node["id"]]
            same(
                node,
                {
                    "eventType": d["event_type"].name,
                    "channel": d["channel"].name,
                    "provider": d["provider"].name,
                    "providerEventId": d["provider_event_id"],
                    "stepNumber": d["step_number"],
                    "occurredAt": occurred[node["id"]],
                    "metadata": d["metadata_"],
                    "enrollment": {
                        "id": str(d["enrollment_id"]),
                        "contactId": enrollments[d["enrollment_id"]]["contact_id"],
                    },
                    "instance": {"id": str(instance["id"]), "name": instance["name"]},
                },
            )
            seen += 1
    assert seen == len(definitions)


async def test_instance_events_by_type_and_channel(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = """query($id: ID!, $type: EventType, $channel: Channel) { instance(id: $id) {
      events(first: 100, eventType: $type, channel: $channel) { totalCount nodes { id } } } }"""
    events = await fetch(seeded, EVENT_SQL)
    for key in ("tech-q4", "founders-nov", "warm-draft"):
        instance_id = sid(f"instance:{key}")
        order = await newest_first(
            seeded, "campaign_events", "instance_id = CAST(:id AS uuid)", id=instance_id
        )
        kinds = {e["id"]: (e["event_type"].upper(), e["channel"].upper()) for e in events}
        for event_type in (None, "SENT", "OPENED", "PROFILE_VISITED", "CONNECTION_ACCEPTED"):
            for channel in (None, "EMAIL", "LINKEDIN"):
                variables = {"id": instance_id, "type": event_type, "channel": channel}
                result = (await ok(client, read_key, query, variables))["instance"]["events"]
                want = [
                    i
                    for i in order
                    if event_type in (None, kinds[i][0]) and channel in (None, kinds[i][1])
                ]
                assert ids(result["nodes"]) == want, (key, event_type, channel)
                assert result["totalCount"] == len(want), (key, event_type, channel)
    founders = sid("instance:founders-nov")
    linkedin = await ok(client, read_key, query, {"id": founders, "channel": "LINKEDIN"})
    assert linkedin["instance"]["events"]["totalCount"] == 3


async def test_orphaned_events(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    now = datetime.now(UTC)
    orphans = [
        (
            "bounced",
            "email",
            "postmark",
            "pm-unknown-1",
            None,
            now - timedelta(hours=1),
            '{"recipient": "nobody@example.com"}',
        ),
        (
            "opened",
            "email",
            "lemlist",
            None,
            2,
            now - timedelta(hours=3),
            '{"lemlist_lead_id": "ld_42", "reason": "no enrollment"}',
        ),
        (
            "connection_accepted",
            "linkedin",
            "phantombuster",
            "pb-9",
            1,
            now - timedelta(hours=2),
            "{}",
        ),
    ]
    for event_type, channel, provider, provider_event_id, step, occurred_at, metadata in orphans:
        await run(
            seeded,
            "INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel,"
            " provider, provider_event_id, step_number, occurred_at, metadata) VALUES"
            " (NULL, CAST(:i AS uuid), CAST(:t AS event_type), CAST(:c AS channel),"
            " CAST(:p AS provider), :pid, :step, :at, CAST(:m AS jsonb))",
            # The lemlist one names its campaign: an orphan whose instance is known.
            i=sid("instance:tech-q4") if provider == "lemlist" else None,
            t=event_type,
            c=channel,
            p=provider,
            pid=provider_event_id,
            step=step,
            at=occurred_at,
            m=metadata,
        )
    query = f"""{{ orphanedEvents {{ totalCount nodes {{ {EVENT_FIELDS} enrollment {{ id }}
      instance {{ id }} }} edges {{ cursor node {{ id }} }} {PAGE_INFO} }} }}"""
    result = (await ok(client, read_key, query))["orphanedEvents"]
    rows = {r["id"]: r for r in await fetch(seeded, EVENT_SQL + " WHERE enrollment_id IS NULL")}
    order = await newest_first(seeded, "campaign_events", "enrollment_id IS NULL")
    assert len(order) == len(orphans)
    assert ids(result["nodes"]) == order
    assert result["totalCount"] == len(orphans)
    assert [n["providerEventId"] for n in result["nodes"]] == ["pm-unknown-1", "pb-9", None]
    for node in result["nodes"]:
        same(node, event_expected(rows[node["id"]]))
        assert node["enrollment"] is None
    assert [n["instance"] for n in result["nodes"]] == [
        None,
        None,
        {"id": sid("instance:tech-q4")},
    ]
    assert result["nodes"][0]["metadata"] == {"recipient": "nobody@example.com"}
    assert result["nodes"][0]["stepNumber"] is None
    assert result["pageInfo"]["hasNextPage"] is False
    assert result["pageInfo"]["hasPreviousPage"] is False
    assert result["pageInfo"]["startCursor"] == result["edges"][0]["cursor"]
    assert result["pageInfo"]["endCursor"] == result["edges"][-1]["cursor"]
    # Orphans without an instance stay out of every instance's events; none is counted.
    instance_events = f"""query($id: ID!) {{ instance(id: $id) {{
      events(first: 100) {{ nodes {{ id }} }} metrics {{ {METRICS} }}
      performance {{ byStep {{ channel stepNumber metrics {{ {METRICS} }} }} }} }} }}"""
    for key in ("tech-q4", "founders-nov", "warm-draft"):
        data = await ok(client, read_key, instance_events, {"id": sid(f"instance:{key}")})
        assert not set(ids(data["instance"]["events"]["nodes"])) & set(order[:2])
        figures = seed_figures(key)
        assert data["instance"]["metrics"] == figures["metrics"]
        by_step = data["instance"]["performance"]["byStep"]
        assert {(s["channel"], s["stepNumber"]): s["metrics"] for s in by_step} == figures["byStep"]


async def test_no_orphans_is_an_empty_connection(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"{{ orphanedEvents {{ totalCount nodes {{ id }} edges {{ cursor }} {PAGE_INFO} }} }}"
    assert (await ok(client, read_key, query))["orphanedEvents"] == {
        "totalCount": 0,
        "nodes": [],
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


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
    """The counterpart of the test above: the same documents succeed with the read scope."""
    for field, query in ROOT_FIELDS.items():
        data = await ok(client, read_key, query)
        assert data[field] is not None, field
