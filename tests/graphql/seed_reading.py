"""Reading the demo data back: expected values, SQL read-backs and small assertion helpers.

Expected values come from the seed module's definitions (names, statuses, steps, events...) or
from rows read with SQL in the test (timestamps, anything a test changed); figures the service
computes (counters, rates, per-step and per-channel analytics) are derived here from the seed's
events with the rules of domain.md, never copied from the service.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from app.cli.seed import (
    _enrollments,
    _events,
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
