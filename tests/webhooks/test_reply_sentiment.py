"""Reply sentiment (domain.md, "Replies"): lemlist's interested / not interested, classifyReply
and its effects (out of office, unsubscribe request), and the positive / negative figures.

Expectations come from the test's own inputs and from recounts of the stored rows, never from
the code under test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.db.engine import create_sessionmaker
from app.services.ingestion.counters import check_counters
from app.services.replies import (
    check_sentiments,
)
from tests.graphql_client import gql
from tests.webhooks.helpers import (
    T0,
    count_rows,
    counters,
    enrollment_state,
    event,
    iso,
    load,
    make_campaign,
    ok_events,
    post_lemlist,
    scalar,
    snapshot,
    with_enrollment,
)
from tests.webhooks.sentiment import (
    CLASSIFY,
    PERFORMANCE,
    STEPS,
    classify,
    db_now,
    event_id,
    lemlist_says,
    reply,
    sentiment_of,
)

# ----------------------------------------------------------------------------- lemlist


@pytest.mark.parametrize("reply_first", [True, False])
async def test_lemlist_interest_sets_the_reply_sentiment_in_either_order(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    reply_first: bool,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    judged_at = T0 + timedelta(minutes=10)
    if reply_first:
        replied = await reply(client, engine, webhook_key, enrollment)
        counts = await lemlist_says(client, "emailsInterested", enrollment, judged_at)
    else:
        counts = await lemlist_says(client, "emailsInterested", enrollment, judged_at)
        replied = await reply(client, engine, webhook_key, enrollment)
    assert counts == {"accepted": 1, "duplicates": 0, "orphaned": 0, "ignored": 0}
    assert await sentiment_of(engine, replied) == {
        "sentiment": "interested",
        "sentiment_by": "lemlist",
        "sentiment_at": judged_at,
        "return_date": None,
        "enrollment_sentiment": "interested",
        "status": "replied",
    }


async def test_lemlist_latest_judgement_wins_and_repeats_and_strangers_store_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    replied = await reply(client, engine, webhook_key, enrollment, channel="linkedin", step=2)
    # The later judgement arrives first: the earlier one, arriving second, does not win.
    await lemlist_says(client, "linkedinNotInterested", enrollment, T0 + timedelta(hours=2))
    await lemlist_says(client, "linkedinInterested", enrollment, T0 + timedelta(hours=1))
    assert (await sentiment_of(engine, replied))["sentiment"] == "not_interested"

    repeat = with_enrollment(load("lemlist", "interested"), "lemlist", enrollment)
    first = await post_lemlist(client, repeat)
    again = await post_lemlist(client, repeat)
    assert first.json()["accepted"] == 1
    assert again.json() == {"accepted": 0, "duplicates": 1, "orphaned": 0, "ignored": 0}
    too_long = repeat | {"_id": "x" * 256}
    refused = await post_lemlist(client, too_long)
    assert refused.status_code == 400, refused.text
    stranger = with_enrollment(load("lemlist", "notInterested"), "lemlist", str(uuid.uuid4()))
    response = await post_lemlist(client, stranger)
    assert response.json() == {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": 1}
    assert await count_rows(engine, "reply_classifications") == 3


# ----------------------------------------------------------------------------- classifyReply


async def test_classify_reply_records_who_and_when(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    before = await db_now(engine)
    result = await classify(client, write_key, replied, "INTERESTED")
    after = await db_now(engine)
    assert result["errors"] == []
    got = result["event"]
    assert (got["id"], got["sentiment"], got["sentimentBy"]) == (
        replied,
        "INTERESTED",
        "test-writer",
    )
    assert before <= datetime.fromisoformat(got["sentimentAt"]) <= after + timedelta(seconds=5)
    assert got["returnDate"] is None
    assert result["enrollment"]["sentiment"] == "INTERESTED"
    assert result["enrollment"]["status"] == "REPLIED"
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_id::text, sentiment, provider::text, classified_by"
                    " FROM reply_classifications"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [(replied, "interested", "api", "test-writer")]


async def _bad_inputs(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str
) -> tuple[list[tuple[dict[str, Any], str, list[str]]], str]:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    replied = await reply(client, engine, webhook_key, enrollment)
    opened_key = f"open-{uuid.uuid4().hex}"
    await ok_events(client, webhook_key, [event(enrollment, "opened", 1, key=opened_key)])
    orphan_key = f"orphan-{uuid.uuid4().hex}"
    await ok_events(client, webhook_key, [event(str(uuid.uuid4()), "replied", 1, key=orphan_key)])
    now = await db_now(engine)
    ooo = "OUT_OF_OFFICE"
    cases = [
        ({"id": str(uuid.uuid4()), "sentiment": ooo}, "NOT_FOUND", ["eventId"]),
        ({"id": "not-an-id", "sentiment": ooo}, "NOT_FOUND", ["eventId"]),
        ({"id": await event_id(engine, opened_key), "sentiment": ooo}, "INVALID", ["eventId"]),
        ({"id": await event_id(engine, orphan_key), "sentiment": ooo}, "INVALID", ["eventId"]),
        (
            {"id": replied, "sentiment": ooo, "returnDate": iso(now - timedelta(hours=1))},
            "INVALID",
            ["returnDate"],
        ),
        (
            {"id": replied, "sentiment": ooo, "returnDate": iso(now + timedelta(days=91))},
            "INVALID",
            ["returnDate"],
        ),
        (
            {
                "id": replied,
                "sentiment": "INTERESTED",
                "returnDate": iso(now + timedelta(days=2)),
            },
            "INVALID",
            ["returnDate"],
        ),
        (
            {
                "id": replied,
                "sentiment": ooo,
                "returnDate": (now + timedelta(days=2)).replace(tzinfo=None).isoformat(),
            },
            "INVALID",
            ["returnDate"],
        ),
    ]
    return cases, replied


async def test_classify_reply_refuses_bad_input_and_writes_nothing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    read_key: str,
    app: Starlette,
) -> None:
    cases, replied = await _bad_inputs(client, engine, webhook_key)
    before = await snapshot(engine)
    for variables, code, field in cases:
        body = await gql(client, write_key, CLASSIFY, variables)
        assert "errors" not in body, body
        payload = body["data"]["classifyReply"]
        assert (payload["event"], payload["enrollment"]) == (None, None), variables
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], variables
    # An unknown sentiment never reaches the resolver; a read-only key may not classify.
    unknown = await gql(client, write_key, CLASSIFY, {"id": replied, "sentiment": "ANGRY"})
    assert unknown.get("data") is None, unknown
    assert unknown["errors"], unknown
    denied = await gql(client, read_key, CLASSIFY, {"id": replied, "sentiment": "INTERESTED"})
    assert denied["data"] is None, denied
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", denied
    assert await snapshot(engine) == before
    assert await count_rows(engine, "reply_classifications") == 0


# ----------------------------------------------------------------------------- out of office


@pytest.mark.parametrize("given", [False, True])
async def test_out_of_office_puts_the_enrollment_back_to_active_until_the_return_date(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
    given: bool,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    assert (await enrollment_state(engine, campaign.enrollment_id))["status"] == "replied"
    before = await db_now(engine)
    back = before + timedelta(days=10, hours=3) if given else None
    result = await classify(client, write_key, replied, "OUT_OF_OFFICE", back)
    after = await db_now(engine)
    assert result["errors"] == []
    state = await enrollment_state(engine, campaign.enrollment_id)
    assert state["status"] == "active"
    if back is not None:
        assert state["next_action_at"] == back
    else:  # domain.md: by 3 days, counted from the classification
        assert before + timedelta(days=3) <= state["next_action_at"]
        assert state["next_action_at"] <= after + timedelta(days=3, seconds=5)
    assert result["event"]["returnDate"] is not None
    assert datetime.fromisoformat(result["event"]["returnDate"]) == state["next_action_at"]
    assert result["enrollment"]["sentiment"] == "OUT_OF_OFFICE"


@pytest.mark.parametrize("outcome", ["bounced", "unsubscribed"])
@pytest.mark.parametrize("classified_first", [True, False])
async def test_a_higher_outcome_after_the_reply_wins_over_out_of_office(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
    outcome: str,
    classified_first: bool,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    replied = await reply(client, engine, webhook_key, enrollment, at=T0)
    later = event(enrollment, outcome, 1, T0 + timedelta(hours=1))
    if classified_first:
        assert (await classify(client, write_key, replied, "OUT_OF_OFFICE"))["errors"] == []
        await ok_events(client, webhook_key, [later])
    else:
        await ok_events(client, webhook_key, [later])
        assert (await classify(client, write_key, replied, "OUT_OF_OFFICE"))["errors"] == []
    state = await enrollment_state(engine, enrollment)
    assert (state["status"], state["next_action_at"]) == (outcome, None)
    assert (await sentiment_of(engine, replied))["sentiment"] == "out_of_office"


async def test_out_of_office_reclassified_stops_the_sequence_again(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    await classify(client, write_key, replied, "OUT_OF_OFFICE")
    assert (await enrollment_state(engine, campaign.enrollment_id))["status"] == "active"
    result = await classify(client, write_key, replied, "NOT_INTERESTED")
    assert (result["enrollment"]["status"], result["enrollment"]["nextActionAt"]) == (
        "REPLIED",
        None,
    )


# ----------------------------------------------------------------------------- unsubscribe


async def _with_address(engine: AsyncEngine, enrollment_id: str, address: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE enrollments SET metadata = CAST(:m AS jsonb) WHERE id = CAST(:id AS uuid)"
            ),
            {"m": json.dumps({"email": address}), "id": enrollment_id},
        )
        await conn.execute(
            text(
                "INSERT INTO enrollment_addresses (enrollment_id, channel, address)"
                " VALUES (CAST(:id AS uuid), 'email', :a)"
            ),
            {"id": enrollment_id, "a": address},
        )


async def test_unsubscribe_request_unsubscribes_and_suppresses_everywhere(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    here = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    elsewhere = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    for campaign in (here, elsewhere):
        await _with_address(engine, campaign.enrollment_id, address)
    replied = await reply(client, engine, webhook_key, here.enrollment_id, step=2)
    result = await classify(client, write_key, replied, "UNSUBSCRIBE_REQUEST")
    assert result["errors"] == []
    assert result["enrollment"]["status"] == "UNSUBSCRIBED"
    assert (await enrollment_state(engine, elsewhere.enrollment_id))["status"] == "unsubscribed"
    reason = await scalar(
        engine, "SELECT reason::text FROM suppressions WHERE address = :a", a=address
    )
    assert reason == "unsubscribed"
    # Again: the unsubscribe is recorded once, and the counters still match the events.
    await classify(client, write_key, replied, "UNSUBSCRIBE_REQUEST")
    unsubscribes = await scalar(
        engine,
        "SELECT count(*) FROM campaign_events WHERE event_type = 'unsubscribed'"
        " AND enrollment_id = CAST(:id AS uuid)",
        id=here.enrollment_id,
    )
    assert unsubscribes == 1
    assert (await counters(engine, here.instance_id))["total_unsubscribed"] == 1
    async with create_sessionmaker(engine).begin() as session:
        assert await check_counters(session) == []


# ----------------------------------------------------------------------------- analytics


def _recount(rows: list[Any]) -> dict[tuple[str, int] | str | None, dict[str, set[Any]]]:
    """domain.md: unique outcomes (enrollment, channel, step) among the replies, positive
    (interested) and negative (not interested, unsubscribe request), per step, per channel
    and for the instance (key None)."""
    figures: dict[Any, dict[str, set[Any]]] = defaultdict(
        lambda: {"replied": set(), "positive": set(), "negative": set()}
    )
    for enrollment, channel, step, sentiment in rows:
        outcome = (enrollment, channel, step)
        kinds = ["replied"]
        if sentiment == "interested":
            kinds.append("positive")
        if sentiment in ("not_interested", "unsubscribe_request"):
            kinds.append("negative")
        for key in ((channel, step), channel, None):
            for kind in kinds:
                figures[key][kind].add(outcome)
    return figures


def _expected(figures: dict[str, set[Any]]) -> dict[str, Any]:
    replied, positive, negative = (len(figures[k]) for k in ("replied", "positive", "negative"))
    return {
        "positive": positive,
        "negative": negative,
        "positiveRate": positive / replied if replied else 0.0,
        "negativeRate": negative / replied if replied else 0.0,
    }


async def test_positive_and_negative_replies_per_instance_step_and_channel(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=6, current_step=1)
    other = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    e = campaign.enrollment_ids
    replies = [
        (await reply(client, engine, webhook_key, e[0], step=1), "INTERESTED"),
        (await reply(client, engine, webhook_key, e[1], step=1), "NOT_INTERESTED"),
        (await reply(client, engine, webhook_key, e[2], step=2), "UNSUBSCRIBE_REQUEST"),
        (await reply(client, engine, webhook_key, e[3], step=2, channel="linkedin"), "INTERESTED"),
        (
            await reply(client, engine, webhook_key, e[4], step=2, channel="linkedin"),
            "WRONG_PERSON",
        ),
        (await reply(client, engine, webhook_key, e[5], step=3), None),
        (await reply(client, engine, webhook_key, other.enrollment_id, step=1), "INTERESTED"),
    ]
    for replied, sentiment in replies:
        if sentiment is not None:
            assert (await classify(client, write_key, replied, sentiment))["errors"] == []
    await lemlist_says(client, "linkedinNotInterested", e[4], T0 + timedelta(days=400))

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT enrollment_id, channel::text, coalesce(step_number, 0), sentiment"
                    " FROM campaign_events WHERE event_type = 'replied'"
                    " AND instance_id = CAST(:i AS uuid)"
                ),
                {"i": campaign.instance_id},
            )
        ).all()
    recount = _recount([tuple(r) for r in rows])
    body = await gql(client, write_key, PERFORMANCE, {"id": campaign.instance_id})
    performance = body["data"]["instance"]["performance"]
    assert performance["replySentiment"] == _expected(recount[None])
    assert performance["replySentiment"]["positive"] == 2  # the test's own inputs
    assert performance["replySentiment"]["negative"] == 3
    by_step = {
        (s["channel"].lower(), s["stepNumber"]): s for s in performance["byStep"] if s["metrics"]
    }
    for key, figures in recount.items():
        if isinstance(key, tuple):
            assert by_step[key]["replySentiment"] == _expected(figures), key
            assert by_step[key]["metrics"]["replied"] == len(figures["replied"])
    by_channel = {c["channel"].lower(): c for c in performance["byChannel"]}
    for channel in ("email", "linkedin"):
        assert by_channel[channel]["replySentiment"] == _expected(recount[channel])


# ----------------------------------------------------------------------------- counters check


def _counters_check(
    database_url: str, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [str(Path(sys.executable).parent / "campaign-api"), "counters", "check", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_counters_check_finds_and_repairs_a_tampered_sentiment(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
    database_url: str,
    tmp_path: Path,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    await classify(client, write_key, replied, "INTERESTED")
    clean = await asyncio.to_thread(_counters_check, database_url, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "reply sentiments match their classifications" in clean.stdout
    good = await sentiment_of(engine, replied)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE campaign_events SET sentiment = 'not_interested'"
                " WHERE id = CAST(:id AS uuid)"
            ),
            {"id": replied},
        )
    async with create_sessionmaker(engine).begin() as session:
        [difference] = await check_sentiments(session)
    assert (difference.kind, str(difference.id)) == ("event", replied)
    assert (await sentiment_of(engine, replied))["sentiment"] == "not_interested"  # unchanged

    found = await asyncio.to_thread(_counters_check, database_url, tmp_path)
    assert found.returncode == 1
    assert f"event {replied}\tsentiment" in found.stdout
    fixed = await asyncio.to_thread(_counters_check, database_url, tmp_path, "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert await sentiment_of(engine, replied) == good
    again = await asyncio.to_thread(_counters_check, database_url, tmp_path)
    assert again.returncode == 0, again.stdout


async def test_a_person_and_lemlist_the_later_judgement_wins_whatever_arrives_last(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    replied = await reply(client, engine, webhook_key, enrollment)
    await classify(client, write_key, replied, "NOT_INTERESTED")
    # lemlist's judgement made before the person's, delivered after it: the person's stands.
    await lemlist_says(client, "emailsInterested", enrollment, T0 + timedelta(minutes=1))
    stored = await sentiment_of(engine, replied)
    assert (stored["sentiment"], stored["sentiment_by"]) == ("not_interested", "test-writer")
    # One made after it wins.
    later = await db_now(engine) + timedelta(minutes=1)
    await lemlist_says(client, "emailsInterested", enrollment, later)
    stored = await sentiment_of(engine, replied)
    assert (stored["sentiment"], stored["sentiment_by"], stored["sentiment_at"]) == (
        "interested",
        "lemlist",
        later,
    )
