"""The database's CHECK constraints: each rule of domain.md broken with raw SQL, and refused
with its SQLSTATE and constraint name; every boundary is shown from both sides, so a
constraint that is too strict fails here too."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.constraints.helpers import (
    AT,
    CHECK_VIOLATION,
    COUNTERS,
    EMAIL_EVENTS,
    LINKEDIN_EVENTS,
    assert_row_rule,
    case,
    execute,
    insert,
    json_of_size,
    refused,
)

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
    *(
        case(
            "campaign_templates",
            {"settings": settings},
            None if ok else "ck_campaign_templates_cross_campaign_policy_known",
            name,
        )
        for settings, ok, name in [
            ('{"cross_campaign_policy": "allow"}', True, "policy allow"),
            ('{"cross_campaign_policy": "skip"}', True, "policy skip"),
            ('{"cross_campaign_policy": "move"}', True, "policy move"),
            ('{"cross_campaign_policy": "MOVE"}', False, "policy MOVE"),
            ('{"cross_campaign_policy": "later"}', False, "policy later"),
            ('{"cross_campaign_policy": null}', False, "policy null"),
            ('{"cross_campaign_policy": ["move"]}', False, "policy [move]"),
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
    case("enrollments", {"status": "removed", "removal_reason": "x"}, None, "removed, reason"),
    case(
        "enrollments",
        {"status": "removed", "removal_reason": "x" * 500},
        None,
        "removed, reason 500 chars",
    ),
    case(
        "enrollments",
        {"status": "removed", "removal_reason": "x" * 501},
        "ck_enrollments_removal_reason_when_removed",
        "removed, reason 501 chars",
    ),
    case(
        "enrollments",
        {"status": "removed", "removal_reason": ""},
        "ck_enrollments_removal_reason_when_removed",
        "removed, reason ''",
    ),
    case(
        "enrollments",
        {"status": "active", "removal_reason": "x"},
        "ck_enrollments_removal_reason_when_removed",
        "active with a removal reason",
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
    await assert_row_rule(session, parents, table, overrides, refused_by)


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


async def test_a_moved_enrollment_is_removed_with_a_reason_and_names_another_instance(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    here = parents["instance_id"]
    there = await insert(
        session, "campaign_instances", template_id=parents["template_id"], name="other"
    )
    moved = {"status": "removed", "removal_reason": "moved", "moved_to_instance_id": there}
    cases: list[tuple[dict[str, Any], str | None]] = [
        (moved, None),
        (moved | {"moved_to_instance_id": here}, "ck_enrollments_moved_when_removed"),
        (moved | {"removal_reason": None}, "ck_enrollments_moved_when_removed"),
        (moved | {"status": "active", "removal_reason": None}, "ck_enrollments_moved_when_removed"),
    ]
    for n, (values, refused_by) in enumerate(cases):
        row = {"instance_id": here, "contact_id": f"moved-{n}", **values}
        if refused_by is None:
            assert await insert(session, "enrollments", **row)
            continue
        columns = ", ".join(row)
        params = ", ".join(f":{column}" for column in row)
        error = await refused(
            session, f"INSERT INTO enrollments ({columns}) VALUES ({params})", **row
        )
        assert (error.sqlstate, error.constraint_name) == (CHECK_VIOLATION, refused_by), values
