"""Counters equal what the stored events say; check_counters finds a tampered counter and
fix_counters repairs it."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.services.ingestion.counters import check_counters, fix_counters
from tests.webhooks.helpers import (
    COUNTER_OF,
    T0,
    Step,
    counters,
    event,
    expected_counters,
    make_campaign,
    ok_events,
)

STEPS = (Step("email", 1, 0), Step("email", 2, 24), Step("linkedin", 2, 12), Step("email", 3, 48))
TYPES = [*COUNTER_OF, "connection_accepted", "failed"]


def varied_stream(enrollments: dict[str, str], count: int, seed: int) -> list[dict[str, Any]]:
    """Random events (all types, steps 1-3 or none, both channels where allowed, repeats)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for _ in range(count):
        enrollment_id = rng.choice(sorted(enrollments))
        event_type = rng.choice(TYPES)
        step = rng.choice([1, 2, 3, None])
        extra: dict[str, Any] = {}
        if event_type in ("replied", "failed"):
            extra["channel"] = rng.choice(["email", "linkedin"])
        body = event(
            enrollment_id, event_type, step, T0 + timedelta(minutes=rng.randrange(9000)), **extra
        )
        events.append(body | {"instance_id": enrollments[enrollment_id]})
        if rng.random() < 0.1:  # an exact repeat of the provider event
            events.append(events[-1])
    return events


async def test_counters_match_the_events_and_can_be_checked_and_fixed(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str
) -> None:
    first = await make_campaign(engine, STEPS, enrollments=3)
    second = await make_campaign(engine, STEPS, template_type="email", enrollments=2)
    enrollments = {e: first.instance_id for e in first.enrollment_ids} | {
        e: second.instance_id for e in second.enrollment_ids
    }
    stream = varied_stream(enrollments, 160, seed=8)
    for chunk in range(0, len(stream), 20):
        batch = [
            {k: v for k, v in e.items() if k != "instance_id"} for e in stream[chunk : chunk + 20]
        ]
        await ok_events(client, webhook_key, batch)
    # An orphan does not count anywhere.
    await ok_events(client, webhook_key, [event(str(uuid.uuid4()), "opened", 1)])

    unique = {e["provider_event_id"]: e for e in stream}.values()
    expected = expected_counters(unique)
    for campaign in (first, second):
        got = await counters(engine, campaign.instance_id)
        assert got == expected[campaign.instance_id]
    assert any(v > 1 for v in expected[first.instance_id].values())  # the stream is varied

    async with app.state.sessionmaker() as session:
        assert await check_counters(session) == []

    # Tamper: a stored column, and a pending shard.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE campaign_instances SET total_opened = total_opened + 5 WHERE id = :i"),
            {"i": first.instance_id},
        )
        shard_rows = await conn.execute(
            text(
                "UPDATE instance_counter_shards SET clicked = clicked + 2"
                " WHERE ctid = (SELECT ctid FROM instance_counter_shards WHERE instance_id = :i"
                " LIMIT 1)"
            ),
            {"i": second.instance_id},
        )
        assert shard_rows.rowcount == 1
    async with app.state.sessionmaker() as session:
        differences = await check_counters(session)
    found = {(str(d.instance_id), d.counter): (d.stored, d.recomputed) for d in differences}
    opened = expected[first.instance_id]["total_opened"]
    clicked = expected[second.instance_id]["total_clicked"]
    assert found == {
        (first.instance_id, "total_opened"): (opened + 5, opened),
        (second.instance_id, "total_clicked"): (clicked + 2, clicked),
    }

    async with app.state.sessionmaker.begin() as session:
        await fix_counters(session)
    async with app.state.sessionmaker() as session:
        assert await check_counters(session) == []
    for campaign in (first, second):
        assert await counters(engine, campaign.instance_id) == expected[campaign.instance_id]

    # After the fix, new events count only what is new.
    again = [e for e in stream if e["event_type"] == "opened"][:1]
    assert again
    target = again[0]
    fresh = event(target["enrollment_id"], "opened", target.get("step_number"))
    await ok_events(client, webhook_key, [fresh])
    new_step = event(target["enrollment_id"], "opened", 4)
    await ok_events(client, webhook_key, [new_step])
    instance = target["instance_id"]
    got = await counters(engine, instance)
    assert got["total_opened"] == expected[instance]["total_opened"] + 1
    async with app.state.sessionmaker() as session:
        assert await check_counters(session) == []
