"""The database's own guards: each rule of domain.md broken with raw SQL, and refused.

Every refusal names its SQLSTATE and, where PostgreSQL reports one, the constraint; every
boundary is shown from both sides, so a constraint that is too strict fails here too.
"""

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


# --- helpers ----------------------------------------------------------------------------------


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


@pytest.fixture
async def parents(session: AsyncSession) -> dict[str, uuid.UUID]:
    """A template, one instance of it and one enrollment: what other rows point at."""
    template_id = await insert_template(session, type="multi_channel")
    instance_id = await insert_instance(session, template_id)
    enrollment_id = await insert_enrollment(session, instance_id)
    return {"template_id": template_id, "instance_id": instance_id, "enrollment_id": enrollment_id}


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


# --- CHECK constraints, both sides of each boundary -------------------------------------------

STEP_CASES = [
    case(table, overrides, refused and f"ck_{table}_{refused}", name)
    for table in ("email_steps", "linkedin_steps")
    for overrides, refused, name in [
        ({"delay_hours": 0}, None, "delay 0"),
        ({"delay_hours": 720}, None, "delay 720"),
        ({"delay_hours": 721}, "delay_hours_range", "delay 721"),
        ({"delay_hours": -1}, "delay_hours_range", "delay -1"),
        ({"step_number": 1}, None, "step 1"),
        ({"step_number": 0}, "step_number_positive", "step 0"),
        ({"step_number": -1}, "step_number_positive", "step -1"),
    ]
]

EMAIL_STEP_CASES = [
    case("email_steps", {"body": "x" * 10}, None, "body 10 chars"),
    case("email_steps", {"body": "x" * 9}, "ck_email_steps_body_length", "body 9 chars"),
    case("email_steps", {"body": "x" * 50_000}, None, "body 50000 chars"),
    case("email_steps", {"body": "x" * 50_001}, "ck_email_steps_body_length", "body 50001"),
    case("email_steps", {"subject": None}, None, "no subject"),
    case("email_steps", {"subject": "x" * 255}, None, "subject 255 chars"),
    case("email_steps", {"subject": "x" * 256}, "ck_email_steps_subject_length", "subject 256"),
    case("email_steps", {"ab_variant": "A"}, None, "variant A"),
    case("email_steps", {"ab_variant": ""}, "ck_email_steps_ab_variant_length", "variant ''"),
]

LINKEDIN_STEP_CASES = [
    case("linkedin_steps", {"action": action, "message": message}, refused_by, name)
    for action, message, refused_by, name in [
        ("connection_request", None, None, "connection_request without note"),
        ("connection_request", "x" * 300, None, "connection_request 300 chars"),
        (
            "connection_request",
            "x" * 301,
            "ck_linkedin_steps_connection_note_length",
            "connection_request 301 chars",
        ),
        ("profile_visit", None, None, "profile_visit without message"),
        ("profile_visit", "", None, "profile_visit empty message"),
        ("profile_visit", "Hi", "ck_linkedin_steps_profile_visit_no_message", "profile_visit Hi"),
        ("message", None, "ck_linkedin_steps_message_required", "message without message"),
        ("message", "   ", "ck_linkedin_steps_message_required", "message blank"),
        ("message", "x" * 1500, None, "message 1500 chars"),
        ("message", "x" * 1501, "ck_linkedin_steps_message_length", "message 1501 chars"),
        ("voice_message", None, None, "voice_message without message"),
        ("voice_message", "x" * 1501, "ck_linkedin_steps_message_length", "voice 1501 chars"),
    ]
]

TEMPLATE_CASES = [
    case("campaign_templates", {"name": "x" * 255}, None, "name 255 chars"),
    case(
        "campaign_templates", {"name": "x" * 256}, "ck_campaign_templates_name_length", "name 256"
    ),
    case("campaign_templates", {"name": "   "}, "ck_campaign_templates_name_length", "name blank"),
    case("campaign_templates", {"description": "x" * 5000}, None, "description 5000 chars"),
    case(
        "campaign_templates",
        {"description": "x" * 5001},
        "ck_campaign_templates_description_length",
        "description 5001 chars",
    ),
    case("campaign_templates", {"settings": "{}"}, None, "settings {}"),
    case("campaign_templates", {"settings": json_of_size(10_240)}, None, "settings 10240 bytes"),
    *(
        case("campaign_templates", {"settings": bad}, "ck_campaign_templates_settings_object", name)
        for bad, name in [
            ("[]", "settings []"),
            ('[{"a": 1}]', "settings array of objects"),
            ('"text"', "settings string"),
            ("null", "settings JSON null"),
            (json_of_size(10_241), "settings 10241 bytes"),
        ]
    ),
]

INSTANCE_CASES = [
    case("campaign_instances", {"name": "x" * 255}, None, "name 255 chars"),
    case("campaign_instances", {"name": ""}, "ck_campaign_instances_name_length", "name empty"),
    case(
        "campaign_instances",
        {"provider_config": '["postmark"]'},
        "ck_campaign_instances_provider_config_object",
        "provider_config array",
    ),
    case("campaign_instances", {"status": "active", "started_at": AT}, None, "active started"),
    case(
        "campaign_instances",
        {"status": "active"},
        "ck_campaign_instances_started_at_set",
        "active without started_at",
    ),
    case(
        "campaign_instances",
        {"status": "paused", "started_at": AT, "paused_at": AT},
        None,
        "paused with paused_at",
    ),
    case(
        "campaign_instances",
        {"status": "paused", "started_at": AT},
        "ck_campaign_instances_paused_at_set",
        "paused without paused_at",
    ),
    case(
        "campaign_instances",
        {"status": "completed", "started_at": AT, "completed_at": AT},
        None,
        "completed with completed_at",
    ),
    case(
        "campaign_instances",
        {"status": "completed", "started_at": AT},
        "ck_campaign_instances_completed_at_set",
        "completed without completed_at",
    ),
    case(
        "campaign_instances",
        {"status": "failed", "failure_reason": "provider down"},
        None,
        "failed from draft with a reason",
    ),
    case(
        "campaign_instances",
        {"status": "failed"},
        "ck_campaign_instances_failure_reason_set",
        "failed without reason",
    ),
    case(
        "campaign_instances",
        {"status": "failed", "failure_reason": "  "},
        "ck_campaign_instances_failure_reason_set",
        "failed with a blank reason",
    ),
]

ENROLLMENT_CASES = [
    case("enrollments", {"contact_id": "x" * 255}, None, "contact_id 255 chars"),
    case("enrollments", {"contact_id": "x" * 256}, "ck_enrollments_contact_id_length", "256"),
    case("enrollments", {"contact_id": ""}, "ck_enrollments_contact_id_length", "contact_id ''"),
    case("enrollments", {"current_step": 0}, None, "current_step 0"),
    case(
        "enrollments",
        {"current_step": -1},
        "ck_enrollments_current_step_non_negative",
        "current_step -1",
    ),
    case("enrollments", {"metadata": "[]"}, "ck_enrollments_metadata_object", "metadata []"),
    case(
        "enrollments",
        {"status": "unsubscribed", "unsubscribed_at": AT},
        None,
        "unsubscribed with unsubscribed_at",
    ),
    case(
        "enrollments",
        {"status": "unsubscribed"},
        "ck_enrollments_unsubscribed_at_set",
        "unsubscribed without unsubscribed_at",
    ),
]

EVENT_CASES = [
    case("campaign_events", {"step_number": None}, None, "no step"),
    case("campaign_events", {"step_number": 1}, None, "step 1"),
    case(
        "campaign_events", {"step_number": 0}, "ck_campaign_events_step_number_positive", "step 0"
    ),
    case("campaign_events", {"provider_event_id": "x" * 255}, None, "provider id 255 chars"),
    case(
        "campaign_events",
        {"provider_event_id": "x" * 256},
        "ck_campaign_events_provider_event_id_length",
        "provider id 256 chars",
    ),
    case(
        "campaign_events",
        {"provider_event_id": ""},
        "ck_campaign_events_provider_event_id_length",
        "provider id ''",
    ),
    case("campaign_events", {"metadata": "[]"}, "ck_campaign_events_metadata_object", "meta []"),
    case(
        "campaign_events",
        {"enrollment_id": None, "instance_id": None, "metadata": '{"ref": "x"}'},
        None,
        "orphan",
    ),
    *(
        case(
            "campaign_events",
            {"event_type": event_type, "channel": channel},
            None if event_type in allowed else "ck_campaign_events_event_type_channel",
            f"{event_type} on {channel}",
        )
        for channel, allowed in (("email", EMAIL_EVENTS), ("linkedin", LINKEDIN_EVENTS))
        for event_type in sorted(EMAIL_EVENTS | LINKEDIN_EVENTS)
    ),
]

API_KEY_CASES = [
    case("api_keys", {"scopes": ["read"]}, None, "scopes read"),
    case("api_keys", {"scopes": ["read", "write", "webhooks", "admin"]}, None, "every scope"),
    case("api_keys", {"scopes": []}, "ck_api_keys_scopes_known", "no scopes"),
    case("api_keys", {"scopes": ["root"]}, "ck_api_keys_scopes_known", "scopes root"),
    case("api_keys", {"scopes": ["read", "Root"]}, "ck_api_keys_scopes_known", "read and Root"),
    case("api_keys", {"key_hash": "A" * 64}, "ck_api_keys_key_hash_sha256", "hash upper-case"),
    case("api_keys", {"key_hash": "0" * 63}, "ck_api_keys_key_hash_sha256", "hash 63 chars"),
    case("api_keys", {"name": "   "}, "ck_api_keys_name_length", "name blank"),
    case("api_keys", {"revoked": True, "revoked_at": AT}, None, "revoked with revoked_at"),
    case("api_keys", {"revoked": True}, "ck_api_keys_revoked_at_set", "revoked without when"),
]

TRANSITION_CASES = [
    case("instance_transitions", {"from_status": "draft", "to_status": "active"}, None, "moves"),
    case(
        "instance_transitions",
        {"from_status": "active", "to_status": "active"},
        "ck_instance_transitions_status_changes",
        "active to active",
    ),
]


@pytest.mark.parametrize(
    ("table", "overrides", "refused_by"),
    STEP_CASES
    + EMAIL_STEP_CASES
    + LINKEDIN_STEP_CASES
    + TEMPLATE_CASES
    + INSTANCE_CASES
    + ENROLLMENT_CASES
    + EVENT_CASES
    + API_KEY_CASES
    + TRANSITION_CASES,
)
async def test_check_constraint(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    table: str,
    overrides: dict[str, Any],
    refused_by: str | None,
) -> None:
    row = {**valid_row(table, parents), **overrides}
    if refused_by is None:
        assert await insert(session, table, **row)
        return
    columns = ", ".join(row)
    params = ", ".join(f":{column}" for column in row)
    error = await refused(session, f"INSERT INTO {table} ({columns}) VALUES ({params})", **row)
    assert (error.sqlstate, error.constraint_name) == (CHECK_VIOLATION, refused_by)


@pytest.mark.parametrize("counter", COUNTERS)
async def test_counter_cannot_go_below_zero(
    session: AsyncSession, parents: dict[str, uuid.UUID], counter: str
) -> None:
    sql = f"UPDATE campaign_instances SET {counter} = {counter} + :by WHERE id = :id"
    error = await refused(session, sql, by=-1, id=parents["instance_id"])
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == f"ck_campaign_instances_{counter}_non_negative"
    assert await execute(session, sql, by=1, id=parents["instance_id"]) == 1
    assert await execute(session, sql, by=-1, id=parents["instance_id"]) == 1


async def test_counters_are_not_compared_with_each_other(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    """Webhooks arrive out of order, so an open may be counted before its delivery."""
    updated = await execute(
        session,
        "UPDATE campaign_instances SET total_opened = 5, total_clicked = 3, total_replied = 2"
        " WHERE id = :id",
        id=parents["instance_id"],
    )
    assert updated == 1


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
    assert error.constraint_name == "uq_campaign_events_provider_provider_event_id"

    assert await insert_event(session, provider="lemlist", provider_event_id="evt-1")
    assert await insert_event(session, provider="api", provider_event_id=None)
    assert await insert_event(session, provider="api", provider_event_id=None)


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
        ("replied", "bounced", True),
        ("replied", "unsubscribed", True),
        ("bounced", "unsubscribed", True),
        ("completed", "replied", True),
        ("completed", "unsubscribed", True),
        ("removed", "unsubscribed", True),
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
