"""Raw-SQL helpers and domain.md's lists for the database-guard tests: rows inserted and
statements run without the service, so that only the database's own constraints stand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
# ON DELETE RESTRICT reports restrict_violation (23001) from PostgreSQL 18, 23503 before it.
RESTRICTED = {FOREIGN_KEY_VIOLATION, "23001"}

AT = datetime(2026, 1, 1, tzinfo=UTC)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)

COUNTERS = (
    "total_enrolled",
    "total_sent",
    "total_delivered",
    "total_opened",
    "total_clicked",
    "total_replied",
    "total_bounced",
    "total_unsubscribed",
)

# domain.md's event lists, written out here rather than imported from the code under test.
EMAIL_EVENTS = {
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "unsubscribed",
    "spam_complaint",
    "failed",
}
LINKEDIN_EVENTS = {
    "profile_visited",
    "connection_requested",
    "connection_accepted",
    "message_sent",
    "voice_message_sent",
    "replied",
    "failed",
}


async def insert(session: AsyncSession, table: str, **values: Any) -> uuid.UUID:
    """INSERT one row with bound values (JSON given as a string); return its id."""
    columns = ", ".join(values)
    params = ", ".join(f":{column}" for column in values)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"
    return (await session.execute(text(sql), values)).scalar_one()


async def execute(session: AsyncSession, sql: str, **params: Any) -> int:
    """Run one statement; return how many rows it touched."""
    return (await session.execute(text(sql), params)).rowcount


async def refused(session: AsyncSession, sql: str, **params: Any) -> Any:
    """Run a statement that must fail inside a savepoint; return asyncpg's error.

    The savepoint keeps the test's outer transaction usable after the failure.
    """
    with pytest.raises(IntegrityError) as caught:
        async with session.begin_nested():
            await session.execute(text(sql), params)
    return caught.value.orig.__cause__


async def assert_row_rule(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    table: str,
    overrides: dict[str, Any],
    refused_by: str | None,
) -> None:
    """A valid row of ``table`` with ``overrides`` is stored, or refused by the CHECK named."""
    row = {**valid_row(table, parents), **overrides}
    if refused_by is None:
        assert await insert(session, table, **row)
        return
    columns = ", ".join(row)
    params = ", ".join(f":{column}" for column in row)
    error = await refused(session, f"INSERT INTO {table} ({columns}) VALUES ({params})", **row)
    assert (error.sqlstate, error.constraint_name) == (CHECK_VIOLATION, refused_by)


async def insert_template(session: AsyncSession, **values: Any) -> uuid.UUID:
    return await insert(session, "campaign_templates", **{"name": "T", "type": "email", **values})


async def insert_instance(
    session: AsyncSession, template_id: uuid.UUID, **values: Any
) -> uuid.UUID:
    return await insert(
        session, "campaign_instances", **{"template_id": template_id, "name": "I", **values}
    )


async def insert_enrollment(
    session: AsyncSession, instance_id: uuid.UUID, contact_id: str = "contact-1", **values: Any
) -> uuid.UUID:
    return await insert(
        session, "enrollments", instance_id=instance_id, contact_id=contact_id, **values
    )


async def insert_event(session: AsyncSession, **values: Any) -> uuid.UUID:
    """An event; with no enrollment it is an orphan, which the schema allows."""
    defaults = {"event_type": "sent", "channel": "email", "provider": "postmark", "occurred_at": AT}
    return await insert(session, "campaign_events", **{**defaults, **values})


def valid_row(table: str, parents: dict[str, uuid.UUID]) -> dict[str, Any]:
    """The smallest row of ``table`` that every constraint accepts."""
    template_id, instance_id = parents["template_id"], parents["instance_id"]
    return {
        "api_keys": {"name": "key", "key_hash": "0" * 64, "scopes": ["read"]},
        "campaign_templates": {"name": "T", "type": "email"},
        "email_steps": {"template_id": template_id, "step_number": 1, "body": "Hello {{x}}"},
        "linkedin_steps": {"template_id": template_id, "step_number": 1, "action": "profile_visit"},
        "campaign_instances": {"template_id": template_id, "name": "I"},
        "instance_transitions": {"instance_id": instance_id, "to_status": "draft"},
        "enrollments": {"instance_id": instance_id, "contact_id": "contact-2"},
        "campaign_events": {
            "enrollment_id": parents["enrollment_id"],
            "instance_id": instance_id,
            "event_type": "sent",
            "channel": "email",
            "provider": "postmark",
            "occurred_at": AT,
        },
    }[table]


def case(table: str, overrides: dict[str, Any], refused_by: str | None, name: str) -> Any:
    """One row of the CHECK table: ``refused_by`` None means the row is accepted."""
    return pytest.param(table, overrides, refused_by, id=f"{table}: {name}")


def json_of_size(size: int) -> str:
    """A JSON object whose jsonb text form (``{"k": "xx…"}``) is exactly ``size`` bytes."""
    return '{"k": "' + "x" * (size - 9) + '"}'
