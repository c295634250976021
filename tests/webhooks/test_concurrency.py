"""Concurrent deliveries on real connections.

``client`` alone exercises one application (whose group-commit batcher may merge concurrent
requests into one transaction); ``other_clients`` adds two more applications on the same
database, each with its own pool and batcher, so their transactions truly race. recordEvent
runs one transaction per request and races with both."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.services.ingestion.counters import check_counters
from tests.graphql_client import gql
from tests.webhooks.helpers import (
    COUNTERS,
    RANK,
    SENT_TYPES,
    STATUS_OF,
    T0,
    Step,
    count_rows,
    counters,
    enrollment_state,
    event,
    expected_counters,
    load,
    make_campaign,
    post_events,
    post_postmark,
    stored_events,
    with_enrollment,
)

STEPS = (Step("email", 1, 0), Step("email", 2, 24), Step("linkedin", 2, 12), Step("email", 3, 48))
LAST_STEP = 3


def clients_for(mode: str, client: httpx.AsyncClient, others: list[httpx.AsyncClient]) -> Any:
    return itertools.cycle([client] if mode == "one app" else others)


async def gather_ok(requests: list[Any]) -> list[httpx.Response]:
    """Run the requests at once; none may fail (an exception here is a 500 in the app)."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], failures[:3]
    for response in results:
        assert response.status_code == 200, response.text
    return results


@pytest.mark.parametrize("mode", ["one app", "three apps"])
async def test_the_same_event_fifty_times_at_once_is_stored_and_counted_once(
    client: httpx.AsyncClient,
    other_clients: list[httpx.AsyncClient],
    engine: AsyncEngine,
    app: Starlette,
    mode: str,
) -> None:
    campaign = await make_campaign(engine, STEPS)
    payload = with_enrollment(load("postmark", "Open"), "postmark", campaign.enrollment_id)
    pick = clients_for(mode, client, other_clients)
    responses = await gather_ok([post_postmark(next(pick), payload) for _ in range(50)])
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == 1
    assert sum(b["duplicates"] for b in bodies) == 49
    assert all(b["accepted"] + b["duplicates"] == 1 for b in bodies)
    assert await count_rows(engine, "campaign_events") == 1
    got = await counters(engine, campaign.instance_id)
    assert got == dict.fromkeys(COUNTERS, 0) | {"total_opened": 1}


RECORD_EVENT = """
mutation Record($input: RecordEventInput!) {
  recordEvent(input: $input) { duplicate event { id } errors { code message } }
}
"""


async def test_webhooks_and_record_event_racing_on_one_key(
    client: httpx.AsyncClient,
    other_clients: list[httpx.AsyncClient],
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    campaign = await make_campaign(engine, STEPS)
    body = event(campaign.enrollment_id, "sent", 1, T0, key="race-1")
    variables = {
        "input": {
            "enrollmentId": campaign.enrollment_id,
            "eventType": "SENT",
            "stepNumber": 1,
            "occurredAt": T0.isoformat(),
            "providerEventId": "race-1",
        }
    }
    pick = itertools.cycle(other_clients)
    requests: list[Any] = []
    for n in range(40):
        if n % 2:
            requests.append(gql(next(pick), write_key, RECORD_EVENT, variables))
        else:
            requests.append(post_events(next(pick), webhook_key, [body]))
    results = await asyncio.gather(*requests, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], failures[:3]
    stored = 0
    event_ids = set()
    for result in results:
        if isinstance(result, httpx.Response):
            assert result.status_code == 200, result.text
            stored += result.json()["accepted"]
        else:
            assert "errors" not in result, result
            payload = result["data"]["recordEvent"]
            assert payload["errors"] == []
            stored += not payload["duplicate"]
            event_ids.add(payload["event"]["id"])
    assert stored == 1
    (row,) = await stored_events(engine)
    assert event_ids == {str(row["id"])}  # every recordEvent names the one stored event
    got = await counters(engine, campaign.instance_id)
    assert got == dict.fromkeys(COUNTERS, 0) | {"total_sent": 1}
    assert (await enrollment_state(engine, campaign.enrollment_id))["current_step"] == 1


@pytest.mark.parametrize("mode", ["one app", "three apps"])
async def test_unsubscribed_and_bounced_at_once_always_end_unsubscribed(
    client: httpx.AsyncClient,
    other_clients: list[httpx.AsyncClient],
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    mode: str,
) -> None:
    rounds = 10
    campaign = await make_campaign(engine, STEPS, enrollments=rounds, current_step=1)
    pick = clients_for(mode, client, other_clients)
    for n, enrollment_id in enumerate(campaign.enrollment_ids):
        pair = [
            event(enrollment_id, "unsubscribed", 1, T0 + timedelta(minutes=n % 2)),
            event(enrollment_id, "bounced", 1, T0 + timedelta(minutes=1 - n % 2)),
        ]
        if n % 2:
            pair.reverse()
        await gather_ok([post_events(next(pick), webhook_key, [body]) for body in pair])
    for n, enrollment_id in enumerate(campaign.enrollment_ids):
        state = await enrollment_state(engine, enrollment_id)
        assert state["status"] == "unsubscribed", enrollment_id
        # When the unsubscribe occurred, as sent above.
        assert state["unsubscribed_at"] == T0 + timedelta(minutes=n % 2), enrollment_id
        assert state["next_action_at"] is None
    got = await counters(engine, campaign.instance_id)
    assert got == dict.fromkeys(COUNTERS, 0) | {
        "total_unsubscribed": rounds,
        "total_bounced": rounds,
    }


POOL_TYPES = [
    "sent",
    "sent",
    "connection_requested",
    "message_sent",
    "delivered",
    "delivered",
    "opened",
    "opened",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "unsubscribed",
    "spam_complaint",
    "connection_accepted",
    "failed",
]


def event_pool(enrollments: dict[str, str], size: int, rng: random.Random) -> list[dict[str, Any]]:
    pool = []
    for n in range(size):
        enrollment_id = sorted(enrollments)[n % len(enrollments)]
        event_type = rng.choice(POOL_TYPES)
        step = rng.choice([1, 2, 3, None])
        at = T0 + timedelta(minutes=rng.randrange(10_000))
        pool.append(event(enrollment_id, event_type, step, at, key=f"pool-{n}"))
    return pool


@pytest.mark.parametrize("mode", ["one app", "three apps"])
async def test_overlapping_concurrent_batches(
    client: httpx.AsyncClient,
    other_clients: list[httpx.AsyncClient],
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    mode: str,
) -> None:
    rng = random.Random(20251109)
    first = await make_campaign(engine, STEPS, enrollments=3, current_step=0)
    second = await make_campaign(engine, STEPS, template_type="email", enrollments=3)
    instance_of = {e: first.instance_id for e in first.enrollment_ids} | {
        e: second.instance_id for e in second.enrollment_ids
    }
    pool = event_pool(instance_of, 60, rng)
    batches = []
    for n in range(20):
        batch = rng.sample(pool, 30)
        if n % 2:  # half of them in reverse key order, to invite lock-order trouble
            batch.sort(key=lambda e: e["provider_event_id"], reverse=True)
        batches.append(batch)
    pick = clients_for(mode, client, other_clients)
    responses = await gather_ok([post_events(next(pick), webhook_key, b) for b in batches])

    union = {e["provider_event_id"]: e for batch in batches for e in batch}
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == len(union)
    assert sum(b["accepted"] + b["duplicates"] for b in bodies) == 20 * 30
    assert all(b["orphaned"] == b["ignored"] == 0 for b in bodies)
    stored = await stored_events(engine)
    assert sorted(e["provider_event_id"] for e in stored) == sorted(union)

    async with app.state.sessionmaker() as session:
        assert await check_counters(session) == []
    expected = expected_counters(
        e | {"instance_id": instance_of[e["enrollment_id"]]} for e in union.values()
    )
    for instance_id in (first.instance_id, second.instance_id):
        assert await counters(engine, instance_id) == expected[instance_id]

    # The final state of each enrollment depends only on the set of events.
    per_enrollment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in union.values():
        per_enrollment[e["enrollment_id"]].append(e)
    for enrollment_id in instance_of:
        events = per_enrollment[enrollment_id]
        sent_steps = [
            e["step_number"] for e in events if e["event_type"] in SENT_TYPES and "step_number" in e
        ]
        outcomes = {STATUS_OF[e["event_type"]] for e in events if e["event_type"] in STATUS_OF}
        if LAST_STEP in sent_steps:
            outcomes.add("completed")
        state = await enrollment_state(engine, enrollment_id)
        assert state["current_step"] == max(sent_steps, default=0)
        assert state["status"] == max(outcomes | {"active"}, key=RANK.__getitem__)
