"""The database's unique keys, foreign keys and triggers, exercised with raw SQL: each
refusal names its SQLSTATE and, where PostgreSQL reports one, the constraint."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.constraints.helpers import (
    AT,
    CHECK_VIOLATION,
    FOREIGN_KEY_VIOLATION,
    LONG_AGO,
    RESTRICTED,
    UNIQUE_VIOLATION,
    execute,
    insert,
    insert_enrollment,
    insert_event,
    insert_instance,
    insert_template,
    refused,
    valid_row,
)

# --- uniqueness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "extra"),
    [("email_steps", {"body": "Hello there"}), ("linkedin_steps", {"action": "profile_visit"})],
)
async def test_one_active_step_per_number(
    session: AsyncSession, parents: dict[str, uuid.UUID], table: str, extra: dict[str, Any]
) -> None:
    template_id = parents["template_id"]
    step = {"template_id": template_id, "step_number": 1, **extra}
    await insert(session, table, **step)
    removed = await insert(session, table, **step, is_active=False)
    other_template = await insert_template(session)
    assert await insert(session, table, **{**step, "template_id": other_template})

    columns = ", ".join(step)
    params = ", ".join(f":{column}" for column in step)
    error = await refused(session, f"INSERT INTO {table} ({columns}) VALUES ({params})", **step)
    assert error.sqlstate == UNIQUE_VIOLATION
    assert error.constraint_name == f"uq_{table}_template_id_step_number_active"

    error = await refused(
        session, f"UPDATE {table} SET is_active = true WHERE id = :id", id=removed
    )
    assert error.constraint_name == f"uq_{table}_template_id_step_number_active"


async def test_a_contact_is_enrolled_once_per_instance(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    instance_id = parents["instance_id"]
    error = await refused(
        session,
        "INSERT INTO enrollments (instance_id, contact_id) VALUES (:instance_id, 'contact-1')",
        instance_id=instance_id,
    )
    assert error.sqlstate == UNIQUE_VIOLATION
    assert error.constraint_name == "uq_enrollments_instance_id_contact_id"

    skipped = await session.execute(
        text(
            "INSERT INTO enrollments (instance_id, contact_id) VALUES (:instance_id, 'contact-1')"
            " ON CONFLICT (instance_id, contact_id) DO NOTHING RETURNING id"
        ),
        {"instance_id": instance_id},
    )
    assert skipped.all() == []

    other_instance = await insert_instance(session, parents["template_id"])
    assert await insert_enrollment(session, other_instance, "contact-1")


async def test_a_provider_event_is_stored_once(session: AsyncSession) -> None:
    await insert_event(session, provider="postmark", provider_event_id="evt-1")
    error = await refused(
        session,
        "INSERT INTO campaign_events (event_type, channel, provider, provider_event_id,"
        " occurred_at) VALUES ('opened', 'email', 'postmark', 'evt-1', now())",
    )
    assert error.sqlstate == UNIQUE_VIOLATION
    assert error.constraint_name == "uq_campaign_events_provider_provider_event_id_via_api"

    assert await insert_event(session, provider="lemlist", provider_event_id="evt-1")
    assert await insert_event(session, provider="api", provider_event_id=None)
    assert await insert_event(session, provider="api", provider_event_id=None)


async def test_an_id_reported_through_the_api_is_its_own_namespace(session: AsyncSession) -> None:
    """The same id claimed by a key holder (via_api) does not collide with the provider's."""
    await insert_event(session, provider="lemlist", provider_event_id="act-123")
    assert await insert_event(
        session, provider="lemlist", provider_event_id="act-123", via_api=True
    )
    error = await refused(
        session,
        "INSERT INTO campaign_events (event_type, channel, provider, provider_event_id,"
        " occurred_at, via_api) VALUES ('opened', 'email', 'lemlist', 'act-123', now(), true)",
    )
    assert error.sqlstate == UNIQUE_VIOLATION


# --- foreign keys -------------------------------------------------------------------------------


async def test_a_template_with_an_instance_cannot_be_deleted(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    sql = "DELETE FROM campaign_templates WHERE id = :id"
    error = await refused(session, sql, id=parents["template_id"])
    assert error.sqlstate in RESTRICTED
    assert error.constraint_name == "fk_campaign_instances_template_id_campaign_templates"


async def test_a_template_without_instances_is_deleted_with_its_steps(
    session: AsyncSession,
) -> None:
    template_id = await insert_template(session)
    await insert(session, "email_steps", template_id=template_id, step_number=1, body="Hello there")
    await insert(
        session, "linkedin_steps", template_id=template_id, step_number=1, action="profile_visit"
    )
    assert await execute(session, "DELETE FROM campaign_templates WHERE id = :id", id=template_id)
    steps = await session.scalar(
        text(
            "SELECT (SELECT count(*) FROM email_steps WHERE template_id = :id)"
            " + (SELECT count(*) FROM linkedin_steps WHERE template_id = :id)"
        ),
        {"id": template_id},
    )
    assert steps == 0


async def test_enrollments_and_events_keep_their_parents(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    error = await refused(
        session, "DELETE FROM campaign_instances WHERE id = :id", id=parents["instance_id"]
    )
    assert error.sqlstate in RESTRICTED
    assert error.constraint_name == "fk_enrollments_instance_id_campaign_instances"

    await insert_event(
        session, enrollment_id=parents["enrollment_id"], instance_id=parents["instance_id"]
    )
    error = await refused(
        session, "DELETE FROM enrollments WHERE id = :id", id=parents["enrollment_id"]
    )
    assert error.sqlstate in RESTRICTED
    assert error.constraint_name == "fk_campaign_events_enrollment_id_enrollments"

    error = await refused(
        session,
        "INSERT INTO enrollments (instance_id, contact_id) VALUES (:id, 'contact-9')",
        id=uuid.uuid4(),
    )
    assert error.sqlstate == FOREIGN_KEY_VIOLATION
    assert error.constraint_name == "fk_enrollments_instance_id_campaign_instances"


async def test_transitions_go_with_their_instance(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    instance_id = await insert_instance(session, parents["template_id"])
    await insert(session, "instance_transitions", instance_id=instance_id, to_status="draft")
    assert await execute(session, "DELETE FROM campaign_instances WHERE id = :id", id=instance_id)
    left = await session.scalar(
        text("SELECT count(*) FROM instance_transitions WHERE instance_id = :id"),
        {"id": instance_id},
    )
    assert left == 0


# --- triggers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        "api_keys",
        "campaign_templates",
        "email_steps",
        "linkedin_steps",
        "campaign_instances",
        "instance_transitions",
        "enrollments",
        "campaign_events",
    ],
)
async def test_updated_at_moves_on_every_update(
    session: AsyncSession, parents: dict[str, uuid.UUID], table: str
) -> None:
    """now() is frozen for the transaction, so rows start in 2000 to see the trigger move them.

    The trigger is BEFORE UPDATE only, so an INSERT keeps the backdated value.
    """
    row_id = await insert(
        session, table, **valid_row(table, parents), created_at=LONG_AGO, updated_at=LONG_AGO
    )
    select = text(f"SELECT updated_at, updated_at = now() AS is_now FROM {table} WHERE id = :id")

    await execute(session, f"UPDATE {table} SET created_at = created_at WHERE id = :id", id=row_id)
    assert (await session.execute(select, {"id": row_id})).one().updated_at == LONG_AGO

    await execute(
        session,
        f"UPDATE {table} SET created_at = created_at + interval '1 second' WHERE id = :id",
        id=row_id,
    )
    moved = (await session.execute(select, {"id": row_id})).one()
    assert moved.updated_at > LONG_AGO
    assert moved.is_now

    await execute(
        session,
        f"UPDATE {table} SET created_at = :at, updated_at = :at WHERE id = :id",
        id=row_id,
        at=LONG_AGO,
    )
    assert (await session.execute(select, {"id": row_id})).one().is_now


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("unsubscribed", "bounced", False),
        ("unsubscribed", "replied", False),
        ("unsubscribed", "completed", False),
        ("unsubscribed", "active", False),
        ("unsubscribed", "removed", False),
        ("bounced", "replied", False),
        ("bounced", "active", False),
        ("replied", "completed", False),
        ("replied", "active", False),
        ("completed", "active", False),
        ("removed", "active", False),
        ("failed", "enrolled", False),
        # domain.md's decision: a failed or removed enrollment keeps its status, whatever is
        # reported later (before it, a report could lift one to replied, bounced, unsubscribed).
        ("removed", "unsubscribed", False),
        ("removed", "bounced", False),
        ("removed", "replied", False),
        ("removed", "completed", False),
        ("failed", "unsubscribed", False),
        ("failed", "bounced", False),
        ("failed", "replied", False),
        ("failed", "removed", False),
        ("removed", "failed", False),
        ("replied", "bounced", True),
        ("replied", "unsubscribed", True),
        ("bounced", "unsubscribed", True),
        ("completed", "replied", True),
        ("completed", "unsubscribed", True),
        ("unsubscribed", "unsubscribed", True),
        ("enrolled", "active", True),
        ("active", "paused", True),
        ("paused", "active", True),
        ("active", "removed", True),
    ],
)
async def test_enrollment_status_precedence(
    session: AsyncSession, parents: dict[str, uuid.UUID], before: str, after: str, allowed: bool
) -> None:
    enrollment_id = await insert_enrollment(
        session, parents["instance_id"], "contact-2", status=before, unsubscribed_at=AT
    )
    sql = "UPDATE enrollments SET status = :status WHERE id = :id"
    if allowed:
        assert await execute(session, sql, status=after, id=enrollment_id) == 1
        return
    error = await refused(session, sql, status=after, id=enrollment_id)
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == "enrollment_status_precedence"
    status = await session.scalar(
        text("SELECT status::text FROM enrollments WHERE id = :id"), {"id": enrollment_id}
    )
    assert status == before


async def test_a_linked_event_names_its_instance(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    """Only orphans may lack the denormalized instance id that analytics group by."""
    error = await refused(
        session,
        "INSERT INTO campaign_events (enrollment_id, event_type, channel, provider, occurred_at)"
        " VALUES (:id, 'sent', 'email', 'api', now())",
        id=parents["enrollment_id"],
    )
    assert error.sqlstate == "23514"
    assert error.constraint_name == "ck_campaign_events_linked_event_has_instance"
