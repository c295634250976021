"""Repeated deliveries change nothing; events of unknown enrollments are kept as orphans,
re-linked once the enrollment exists, and purged after retention."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.limits import JSON_MAX_BYTES
from app.services.ingestion.counters import check_counters
from app.services.ingestion.orphans import purge_orphans, relink_orphans
from tests.graphql_client import gql
from tests.webhooks.helpers import (
    COUNTERS,
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
    post_lemlist,
    post_phantombuster,
    post_postmark,
    snapshot,
    stored_events,
    with_enrollment,
)

STEPS = (Step("email", 1, 0), Step("email", 2, 48), Step("linkedin", 2, 24), Step("email", 3, 72))


@pytest.fixture
async def campaign(app: Starlette, engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, STEPS)


# ----------------------------------------------------------------------------- duplicates


def provider_payloads(enrollment_id: str) -> list[tuple[str, dict[str, Any]]]:
    lemlist_sent = with_enrollment(load("lemlist", "emailsSent"), "lemlist", enrollment_id)
    postmark_open = with_enrollment(load("postmark", "Open"), "postmark", enrollment_id)
    postmark_bounce = with_enrollment(load("postmark", "Bounce"), "postmark", enrollment_id)
    phantom = load("phantombuster", "message_sender_object")
    phantom["resultObject"]["enrollmentId"] = enrollment_id
    return [
        ("lemlist", lemlist_sent),
        ("postmark", postmark_open),
        ("postmark", postmark_bounce),
        ("phantombuster", phantom),
    ]


POSTERS = {"lemlist": post_lemlist, "postmark": post_postmark, "phantombuster": post_phantombuster}


async def test_a_provider_event_delivered_again_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, campaign: Campaign
) -> None:
    payloads = provider_payloads(campaign.enrollment_id)
    for provider, payload in payloads:
        response = await POSTERS[provider](client, payload)
        assert response.json()["accepted"] == 1, (provider, response.text)
    before = await snapshot(engine)
    state = await enrollment_state(engine, campaign.enrollment_id)
    assert state["status"] == "bounced"
    assert state["current_step"] == 1
    for provider, payload in payloads * 3:
        response = await POSTERS[provider](client, payload)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 0, "duplicates": 1, "orphaned": 0, "ignored": 0}
    # Not a single row changed, not even an updated_at.
    assert await snapshot(engine) == before


async def test_a_duplicate_with_different_content_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, campaign: Campaign
) -> None:
    """Only (provider, provider_event_id) identifies an event: a repeat is not re-applied even
    if its content would change something."""
    e = campaign.enrollment_id
    await ok_events(client, webhook_key, [event(e, "opened", 1, key="k-1")])
    before = await snapshot(engine)
    again = await ok_events(
        client,
        webhook_key,
        [event(e, "unsubscribed", 2, key="k-1"), event(e, "sent", 3, T0, key="k-1")],
    )
    assert again == {"accepted": 0, "duplicates": 2, "orphaned": 0, "ignored": 0}
    assert await snapshot(engine) == before
    # The same id from another provider (through its own endpoint) is another event.
    other = await post_lemlist(client, load("lemlist", "emailsOpened") | {"_id": "k-1"})
    assert other.status_code == 200, other.text
    assert other.json()["accepted"] == 1


async def test_duplicates_within_one_request_are_stored_once(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, campaign: Campaign
) -> None:
    e = campaign.enrollment_id
    sent = event(e, "sent", 1)
    counts = await ok_events(client, webhook_key, [sent, sent, event(e, "opened", 1), sent])
    assert counts == {"accepted": 2, "duplicates": 2, "orphaned": 0, "ignored": 0}
    assert await count_rows(engine, "campaign_events") == 2
    got = await counters(engine, campaign.instance_id)
    assert got == dict.fromkeys(COUNTERS, 0) | {"total_sent": 1, "total_opened": 1}


RECORD_EVENT = """
mutation Record($input: RecordEventInput!) {
  recordEvent(input: $input) {
    duplicate
    event { id eventType stepNumber occurredAt providerEventId enrollment { id } }
    errors { field code message }
  }
}
"""


async def test_record_event_reports_a_duplicate_with_the_original_event(
    client: httpx.AsyncClient, engine: AsyncEngine, write_key: str, campaign: Campaign
) -> None:
    first_input = {
        "enrollmentId": campaign.enrollment_id,
        "eventType": "OPENED",
        "stepNumber": 1,
        "occurredAt": T0.isoformat(),
        "providerEventId": "pm-open-1",
        "provider": "POSTMARK",
    }
    first = (await gql(client, write_key, RECORD_EVENT, {"input": first_input}))["data"]
    first = first["recordEvent"]
    assert first["duplicate"] is False
    assert first["errors"] == []
    before = await snapshot(engine)
    second_input = first_input | {
        "eventType": "CLICKED",
        "stepNumber": 2,
        "occurredAt": (T0 + timedelta(hours=1)).isoformat(),
    }
    second = (await gql(client, write_key, RECORD_EVENT, {"input": second_input}))["data"]
    second = second["recordEvent"]
    assert second["duplicate"] is True
    assert second["errors"] == []
    assert second["event"] == first["event"]  # the original, as stored
    assert second["event"]["eventType"] == "OPENED"
    assert await snapshot(engine) == before


# ----------------------------------------------------------------------------- orphans

ORPHANED_EVENTS = """
query { orphanedEvents(first: 50) {
  totalCount nodes { id eventType providerEventId metadata enrollment { id } instance { id } }
} }
"""


async def test_unknown_enrollment_is_kept_as_an_orphan_and_relinked_later(
    app: Starlette,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    read_key: str,
) -> None:
    missing = str(uuid.uuid4())
    at = T0 + timedelta(hours=2)
    orphans = [event(missing, "sent", 1, at), event(missing, "opened", 1, at + timedelta(1))]
    counts = await ok_events(client, webhook_key, orphans)
    assert counts["orphaned"] == 2
    assert counts["duplicates"] == counts["ignored"] == 0
    stored = await stored_events(engine)
    assert len(stored) == 2
    for row in stored:
        assert row["enrollment_id"] is None
        assert row["instance_id"] is None
        assert missing in row["metadata"].values()  # the unresolved reference is kept

    listed = (await gql(client, read_key, ORPHANED_EVENTS))["data"]["orphanedEvents"]
    assert listed["totalCount"] == 2
    assert {n["providerEventId"] for n in listed["nodes"]} == {
        o["provider_event_id"] for o in orphans
    }
    assert all(n["enrollment"] is None and n["instance"] is None for n in listed["nodes"])

    # Relinking before the enrollment exists does nothing.
    async with app.state.sessionmaker.begin() as session:
        assert await relink_orphans(session) == 0

    campaign = await make_campaign(engine, STEPS, enrollment_ids=[missing])
    async with app.state.sessionmaker.begin() as session:
        assert await relink_orphans(session) == 2
    stored = await stored_events(engine)
    assert {str(r["enrollment_id"]) for r in stored} == {missing}
    assert {str(r["instance_id"]) for r in stored} == {campaign.instance_id}
    # Its effects were applied, as if it had just arrived.
    state = await enrollment_state(engine, missing)
    assert state["current_step"] == 1
    assert (state["status"], state["next_action_at"]) == campaign.after_sent(1, at)
    got = await counters(engine, campaign.instance_id)
    assert got == dict.fromkeys(COUNTERS, 0) | {"total_sent": 1, "total_opened": 1}
    async with app.state.sessionmaker() as session:
        assert await check_counters(session) == []
    listed = (await gql(client, read_key, ORPHANED_EVENTS))["data"]["orphanedEvents"]
    assert listed["totalCount"] == 0
    # Relinking again finds nothing left to do, and counts nothing twice.
    async with app.state.sessionmaker.begin() as session:
        assert await relink_orphans(session) == 0
    assert await counters(engine, campaign.instance_id) == got


async def test_an_orphan_keeps_its_reference_and_gives_up_metadata_only_at_the_limit(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str
) -> None:
    """The reference is what relinking needs. Metadata with room for it keeps its fields;
    metadata already at the size limit gives way to it, with a mark that it did."""
    small = event("crm-4711", "opened", 1, metadata={"campaign": "spring"})
    at_limit = {"f": "x" * (JSON_MAX_BYTES - len(json.dumps({"f": ""})))}
    assert len(json.dumps(at_limit).encode()) == JSON_MAX_BYTES
    full = event(str(uuid.uuid4()), "opened", 1, metadata=at_limit)
    counts = await ok_events(client, webhook_key, [small, full])
    assert counts["orphaned"] == 2
    stored = {row["provider_event_id"]: row for row in await stored_events(engine)}
    assert stored[small["provider_event_id"]]["metadata"] == {
        "campaign": "spring",
        "unresolved_enrollment_ref": "crm-4711",
    }
    assert stored[full["provider_event_id"]]["metadata"] == {
        "unresolved_enrollment_ref": full["enrollment_id"],
        "metadata_dropped": True,
    }


async def test_provider_events_without_a_known_enrollment_are_orphans(
    client: httpx.AsyncClient, engine: AsyncEngine, campaign: Campaign
) -> None:
    lemlist = load("lemlist", "emailsOpened")
    del lemlist["enrollmentId"]
    postmark = with_enrollment(load("postmark", "Click"), "postmark", "not-a-uuid")
    for response in (await post_lemlist(client, lemlist), await post_postmark(client, postmark)):
        assert response.status_code == 200, response.text
        assert response.json()["orphaned"] == 1
    assert [r["enrollment_id"] for r in await stored_events(engine)] == [None, None]
    assert await counters(engine, campaign.instance_id) == dict.fromkeys(COUNTERS, 0)


async def test_purge_removes_only_old_orphans(
    app: Starlette,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    campaign: Campaign,
) -> None:
    old_orphan = event(str(uuid.uuid4()), "opened", key="old-orphan")
    new_orphan = event(str(uuid.uuid4()), "opened", key="new-orphan")
    old_linked = event(campaign.enrollment_id, "opened", 1, key="old-linked")
    await ok_events(client, webhook_key, [old_orphan, new_orphan, old_linked])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE campaign_events SET created_at = now() - interval '40 days'"
                " WHERE provider_event_id IN ('old-orphan', 'old-linked')"
            )
        )
    async with app.state.sessionmaker.begin() as session:
        assert await purge_orphans(session, timedelta(days=30)) == 1
    remaining = {r["provider_event_id"] for r in await stored_events(engine)}
    assert remaining == {"new-orphan", "old-linked"}
    async with app.state.sessionmaker.begin() as session:
        assert await purge_orphans(session, timedelta(days=30)) == 0
