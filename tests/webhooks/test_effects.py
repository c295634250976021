"""What an event does (domain.md), through POST /webhooks/events and the provider endpoints.

Templates are built with SQL; the expected next step and delay come from the test's own step
list (``Campaign.after_sent``), following "One sequence across channels"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.webhooks.helpers import (
    COUNTER_OF,
    COUNTERS,
    SENT_TYPES,
    T0,
    Campaign,
    Step,
    count_rows,
    counters,
    enrollment_state,
    event,
    load,
    make_campaign,
    ok_events,
    parse_iso,
    post_lemlist,
    post_postmark,
    stored_events,
    with_enrollment,
)

# Multi-channel: numbers 1..4 active; step 2 has two touches (smallest delay 24); the inactive
# email step 5 does not extend the sequence, so 4 is the last step.
MULTI = (
    Step("email", 1, 0),
    Step("linkedin", 1, 6),
    Step("email", 2, 48),
    Step("linkedin", 2, 24),
    Step("email", 3, 96),
    Step("email", 4, 200, active=False),
    Step("linkedin", 4, 12),
    Step("email", 5, 1, active=False),
)
ZERO = dict.fromkeys(COUNTERS, 0)


@pytest.fixture
async def multi(app: Starlette, engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, MULTI)


def only_counter(name: str | None, value: int = 1) -> dict[str, int]:
    return ZERO | ({name: value} if name else {})


def channel_of(event_type: str) -> str:
    return "email" if event_type == "sent" else "linkedin"


def test_the_multi_channel_sequence_is_what_the_test_expects() -> None:
    """A guard on the fixture itself, so the expectations below mean what they say."""
    campaign = Campaign("multi_channel", MULTI, "", "")
    assert campaign.sequence() == {1: 0, 2: 24, 3: 96, 4: 12}


# ----------------------------------------------------------------------------- sent family


@pytest.mark.parametrize("event_type", SENT_TYPES)
async def test_sent_moves_the_step_and_schedules_the_next(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    event_type: str,
) -> None:
    """Enrollment i gets step i (1..4, 4 being the last step)."""
    campaign = await make_campaign(engine, MULTI, enrollments=4)
    at = T0 + timedelta(days=2, minutes=7)
    for step, enrollment_id in enumerate(campaign.enrollment_ids, start=1):
        counts = await ok_events(client, webhook_key, [event(enrollment_id, event_type, step, at)])
        assert counts == {"accepted": 1, "duplicates": 0, "orphaned": 0, "ignored": 0}
        state = await enrollment_state(engine, enrollment_id)
        status, next_action_at = campaign.after_sent(step, at)
        assert state["current_step"] == step
        assert state["status"] == status
        assert state["next_action_at"] == next_action_at
        # Completed when the last step was sent: the event's time, not the time it arrived.
        assert state["completed_at"] == (at if status == "completed" else None)
    # Only the last step completes (a guard on the expectations themselves).
    assert [campaign.after_sent(n, at)[0] for n in range(1, 5)] == ["active"] * 3 + ["completed"]
    assert await counters(engine, campaign.instance_id) == only_counter("total_sent", 4)
    stored = await stored_events(engine)
    assert {(e["event_type"], e["channel"]) for e in stored} == {
        (event_type, channel_of(event_type))
    }


async def test_steps_advance_one_request_at_a_time(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, multi: Campaign
) -> None:
    for step, event_type in ((1, "profile_visited"), (2, "sent"), (3, "sent")):
        at = T0 + timedelta(days=step)
        await ok_events(client, webhook_key, [event(multi.enrollment_id, event_type, step, at)])
        state = await enrollment_state(engine, multi.enrollment_id)
        assert (state["status"], state["next_action_at"]) == multi.after_sent(step, at)
        assert state["current_step"] == step
    # Two sent events of different steps for one enrollment and channel count twice.
    assert (await counters(engine, multi.instance_id))["total_sent"] == 3


async def test_an_older_sent_arriving_late_does_not_move_the_step_back(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, multi: Campaign
) -> None:
    later = T0 + timedelta(days=5)
    await ok_events(client, webhook_key, [event(multi.enrollment_id, "sent", 3, later)])
    before = await enrollment_state(engine, multi.enrollment_id)
    assert before["current_step"] == 3
    await ok_events(client, webhook_key, [event(multi.enrollment_id, "sent", 1, T0)])
    await ok_events(
        client, webhook_key, [event(multi.enrollment_id, "connection_requested", 2, T0)]
    )
    after = await enrollment_state(engine, multi.enrollment_id)
    assert after["current_step"] == 3
    assert after["status"] == "active"
    assert after["next_action_at"] == multi.after_sent(3, later)[1]
    # The late events are still stored and counted (their outcomes are new).
    assert await count_rows(engine, "campaign_events") == 3
    assert (await counters(engine, multi.instance_id))["total_sent"] == 3


@pytest.mark.parametrize(
    ("template_type", "event_type", "step", "expected_delay"),
    [
        # Email template: its LinkedIn steps are not part of the sequence.
        ("email", "sent", 1, 48),
        ("email", "sent", 2, None),
        # LinkedIn template: its email steps are not part of the sequence.
        ("linkedin", "profile_visited", 1, 10),
        ("linkedin", "connection_requested", 3, None),
    ],
)
async def test_the_sequence_uses_only_the_channels_of_the_template_type(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    template_type: str,
    event_type: str,
    step: int,
    expected_delay: int | None,
) -> None:
    steps = (
        (Step("email", 1, 0), Step("email", 2, 48), Step("linkedin", 2, 6), Step("linkedin", 3, 5))
        if template_type == "email"
        else (
            Step("linkedin", 1, 0),
            Step("linkedin", 2, 10),
            Step("linkedin", 3, 24),
            Step("email", 2, 1),
            Step("email", 4, 1),
        )
    )
    campaign = await make_campaign(engine, steps, template_type=template_type)
    await ok_events(client, webhook_key, [event(campaign.enrollment_id, event_type, step, T0)])
    state = await enrollment_state(engine, campaign.enrollment_id)
    if expected_delay is None:
        assert (state["status"], state["next_action_at"]) == ("completed", None)
    else:
        assert state["status"] == "active"
        assert state["next_action_at"] == T0 + timedelta(hours=expected_delay)
    # The helper agrees with the hand-written expectation.
    assert campaign.after_sent(step, T0) == (state["status"], state["next_action_at"])


async def test_sent_without_a_step_counts_but_does_not_move_the_step(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, multi: Campaign
) -> None:
    before = await enrollment_state(engine, multi.enrollment_id)
    await ok_events(client, webhook_key, [event(multi.enrollment_id, "sent")])
    after = await enrollment_state(engine, multi.enrollment_id)
    assert after["current_step"] == before["current_step"] == 0
    assert await counters(engine, multi.instance_id) == only_counter("total_sent")


# ----------------------------------------------------------------------------- counters only


@pytest.mark.parametrize("event_type", ["delivered", "opened", "clicked"])
async def test_engagement_moves_only_its_counter(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    multi: Campaign,
    event_type: str,
) -> None:
    before = await enrollment_state(engine, multi.enrollment_id)
    await ok_events(client, webhook_key, [event(multi.enrollment_id, event_type, 1)])
    after = await enrollment_state(engine, multi.enrollment_id)
    assert after == before
    assert await counters(engine, multi.instance_id) == only_counter(COUNTER_OF[event_type])


# ----------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("event_type", "channel", "status"),
    [
        ("replied", "email", "replied"),
        ("replied", "linkedin", "replied"),
        ("bounced", "email", "bounced"),
        ("unsubscribed", "email", "unsubscribed"),
        ("spam_complaint", "email", "unsubscribed"),
    ],
)
async def test_outcome_events_set_the_status(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    multi: Campaign,
    event_type: str,
    channel: str,
    status: str,
) -> None:
    at = T0 + timedelta(days=3)
    await ok_events(
        client, webhook_key, [event(multi.enrollment_id, event_type, 1, at, channel=channel)]
    )
    state = await enrollment_state(engine, multi.enrollment_id)
    assert state["status"] == status
    assert state["next_action_at"] is None  # the sequence stops
    if status == "unsubscribed":
        assert state["unsubscribed_at"] == at
    else:
        assert state["unsubscribed_at"] is None
    assert await counters(engine, multi.instance_id) == only_counter(COUNTER_OF[event_type])


@pytest.mark.parametrize(
    ("event_type", "channel"),
    [("connection_accepted", "linkedin"), ("failed", "email"), ("failed", "linkedin")],
)
async def test_accepted_and_failed_change_nothing_but_are_stored(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    multi: Campaign,
    event_type: str,
    channel: str,
) -> None:
    before = await enrollment_state(engine, multi.enrollment_id)
    await ok_events(
        client, webhook_key, [event(multi.enrollment_id, event_type, 2, channel=channel)]
    )
    assert await enrollment_state(engine, multi.enrollment_id) == before
    assert await counters(engine, multi.instance_id) == ZERO
    (stored,) = await stored_events(engine)
    assert (stored["event_type"], stored["channel"], stored["step_number"]) == (
        event_type,
        channel,
        2,
    )
    assert str(stored["enrollment_id"]) == multi.enrollment_id
    assert str(stored["instance_id"]) == multi.instance_id


# ----------------------------------------------------------------------------- unique counting


async def test_counters_count_unique_outcomes(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, multi: Campaign
) -> None:
    e = multi.enrollment_id
    five_opens = [event(e, "opened", 1, T0 + timedelta(minutes=m)) for m in range(5)]
    await ok_events(client, webhook_key, five_opens[:2])
    for one in five_opens[2:]:
        await ok_events(client, webhook_key, [one])
    assert (await counters(engine, multi.instance_id))["total_opened"] == 1
    await ok_events(client, webhook_key, [event(e, "opened", 2)])
    assert (await counters(engine, multi.instance_id))["total_opened"] == 2
    # Without a step: step 0 of its channel, counted once.
    await ok_events(client, webhook_key, [event(e, "opened"), event(e, "opened")])
    await ok_events(client, webhook_key, [event(e, "opened")])
    assert (await counters(engine, multi.instance_id))["total_opened"] == 3
    # replied on two channels of one step: two outcomes.
    await ok_events(client, webhook_key, [event(e, "replied", 1, channel="email")])
    await ok_events(client, webhook_key, [event(e, "replied", 1, channel="linkedin")])
    await ok_events(client, webhook_key, [event(e, "replied", 1, channel="linkedin")])
    counts = await counters(engine, multi.instance_id)
    assert counts == ZERO | {"total_opened": 3, "total_replied": 2}
    # Every event was stored, counted or not.
    assert await count_rows(engine, "campaign_events") == 5 + 1 + 3 + 3


async def test_unsubscribed_and_spam_complaint_share_one_outcome(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, multi: Campaign
) -> None:
    e = multi.enrollment_id
    await ok_events(client, webhook_key, [event(e, "spam_complaint", 1)])
    await ok_events(client, webhook_key, [event(e, "unsubscribed", 1)])
    await ok_events(client, webhook_key, [event(e, "unsubscribed", 2)])
    assert (await counters(engine, multi.instance_id))["total_unsubscribed"] == 2


async def test_each_enrollment_counts_separately(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    campaign = await make_campaign(engine, MULTI, enrollments=3)
    events = [event(e, "delivered", 1) for e in campaign.enrollment_ids for _ in range(2)]
    await ok_events(client, webhook_key, events)
    assert (await counters(engine, campaign.instance_id))["total_delivered"] == 3


# ----------------------------------------------------------------------------- providers


async def test_lemlist_events_take_effect(
    client: httpx.AsyncClient, engine: AsyncEngine, multi: Campaign
) -> None:
    sent = with_enrollment(load("lemlist", "emailsSent"), "lemlist", multi.enrollment_id)
    response = await post_lemlist(client, sent)
    assert response.json()["accepted"] == 1
    state = await enrollment_state(engine, multi.enrollment_id)
    step = sent["sequenceStep"] + 1
    assert state["current_step"] == step
    expected = multi.after_sent(step, parse_iso(sent["createdAt"]))
    assert (state["status"], state["next_action_at"]) == expected
    replied = with_enrollment(load("lemlist", "linkedinReplied"), "lemlist", multi.enrollment_id)
    await post_lemlist(client, replied)
    assert (await enrollment_state(engine, multi.enrollment_id))["status"] == "replied"
    counts = await counters(engine, multi.instance_id)
    assert counts == ZERO | {"total_sent": 1, "total_replied": 1}
    stored = {e["provider_event_id"]: e for e in await stored_events(engine)}
    assert stored[replied["_id"]]["channel"] == "linkedin"
    assert stored[replied["_id"]]["step_number"] == replied["sequenceStep"] + 1
    assert stored[sent["_id"]]["metadata"]["leadEmail"] == sent["leadEmail"]


async def test_postmark_events_take_effect(
    client: httpx.AsyncClient, engine: AsyncEngine, multi: Campaign
) -> None:
    for record in ("Delivery", "Open", "Click", "SubscriptionChange"):
        payload = with_enrollment(load("postmark", record), "postmark", multi.enrollment_id)
        response = await post_postmark(client, payload)
        assert response.json()["accepted"] == 1, (record, response.text)
    state = await enrollment_state(engine, multi.enrollment_id)
    assert state["status"] == "unsubscribed"
    changed_at = load("postmark", "SubscriptionChange")["ChangedAt"]
    assert state["unsubscribed_at"] == parse_iso(changed_at)
    counts = await counters(engine, multi.instance_id)
    assert counts == ZERO | {
        "total_delivered": 1,
        "total_opened": 1,
        "total_clicked": 1,
        "total_unsubscribed": 1,
    }


# ----------------------------------------------------------------------------- recordEvent

RECORD_EVENT = """
mutation Record($input: RecordEventInput!) {
  recordEvent(input: $input) {
    duplicate
    event { id eventType channel provider providerEventId stepNumber occurredAt
            enrollment { id status currentStep } }
    errors { field code message }
  }
}
"""


async def record(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body = await gql(client, key, RECORD_EVENT, {"input": fields})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["recordEvent"]
    return payload


async def test_record_event_applies_the_same_effects(
    client: httpx.AsyncClient, engine: AsyncEngine, write_key: str, multi: Campaign
) -> None:
    at = T0 + timedelta(hours=3)
    result = await record(
        client,
        write_key,
        enrollmentId=multi.enrollment_id,
        eventType="CONNECTION_REQUESTED",
        stepNumber=2,
        occurredAt=at.isoformat(),
        providerEventId="rec-1",
        provider="PHANTOMBUSTER",
    )
    assert result["errors"] == []
    assert result["duplicate"] is False
    assert result["event"]["channel"] == "LINKEDIN"  # the default is taken from the type
    assert result["event"]["enrollment"]["currentStep"] == 2
    state = await enrollment_state(engine, multi.enrollment_id)
    assert (state["status"], state["next_action_at"]) == multi.after_sent(2, at)
    assert await counters(engine, multi.instance_id) == only_counter("total_sent")
