"""Reply sentiment under concurrency, on real connections: two classifications of one reply,
a reply and a classification stored at once, a reply put back in the queue, and what storing a
reply costs the database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.applications import Starlette

from app.db.driver import DriverConnection, in_session_transaction
from app.db.engine import create_sessionmaker
from app.domain.enums import EventType, Provider, ReplySentiment
from app.providers import lemlist
from app.services.ingestion.events import NewEvent, check_event, ingest
from app.services.replies import (
    classify_reply,
    record_provider_classifications,
)
from app.services.sending.claims import cancel_stopped
from app.services.validation import Problems
from tests.locks import backend_pid, wait_for_lock_wait
from tests.webhooks.helpers import (
    T0,
    count_rows,
    event,
    iso,
    load,
    make_campaign,
    ok_events,
    post_lemlist,
    scalar,
    with_enrollment,
)
from tests.webhooks.sentiment import (
    STEPS,
    classify,
    db_now,
    event_id,
    lemlist_says,
    reply,
    sentiment_of,
)


@pytest.mark.parametrize("first", ["INTERESTED", "NOT_INTERESTED"])
async def test_two_classifications_of_one_reply_at_once_the_last_committed_wins(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
    first: str,
) -> None:
    """A holds the enrollment's lock with its classification uncommitted; B (through GraphQL,
    on the application's own pool) must wait for it, then wins: the later classification."""
    second = "NOT_INTERESTED" if first == "INTERESTED" else "INTERESTED"
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    sessions: async_sessionmaker[Any] = create_sessionmaker(engine)
    async with sessions.begin() as holder:
        await classify_reply(
            holder,
            replied,
            ReplySentiment(first.lower()),
            None,
            "holder",
            out_of_office_days=3,
            return_max_days=90,
        )
        holder_pid = await backend_pid(holder)
        racing = asyncio.create_task(classify(client, write_key, replied, second))
        await wait_for_lock_wait(engine, blocked_by=holder_pid)
        assert not racing.done()
    result = await racing
    assert result["errors"] == []
    assert (result["event"]["sentiment"], result["event"]["sentimentBy"]) == (
        second,
        "test-writer",
    )
    stored = await sentiment_of(engine, replied)
    assert (stored["sentiment"], stored["sentiment_by"]) == (second.lower(), "test-writer")
    assert stored["enrollment_sentiment"] == second.lower()
    assert await count_rows(engine, "reply_classifications") == 2


async def test_out_of_office_queues_again_the_touch_the_reply_cancelled(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    write_key: str,
    app: Starlette,
) -> None:
    """The reply stopped the enrollment while its step-2 touch waited for a retry; the sender
    cancelled that touch. Out of office: the touch waits for the return date instead."""
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number,"
                " provider, status, attempts, due_at, next_attempt_at, last_error)"
                " VALUES (CAST(:e AS uuid), CAST(:i AS uuid), 'email', 2, 'postmark',"
                " 'queued', 1, now(), now() + interval '1 hour', 'HTTP 500')"
            ),
            {"e": campaign.enrollment_id, "i": campaign.instance_id},
        )
    replied = await reply(client, engine, webhook_key, campaign.enrollment_id)
    async with engine.connect() as conn:
        await cancel_stopped(await DriverConnection.under(conn))
        await conn.commit()
    assert await scalar(engine, "SELECT status::text FROM dispatches") == "cancelled"
    back = await db_now(engine) + timedelta(days=5)
    assert (await classify(client, write_key, replied, "OUT_OF_OFFICE", back))["errors"] == []
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT status::text, next_attempt_at FROM dispatches"))
        ).one()
    assert tuple(row) == ("queued", back)


@pytest.mark.parametrize("held", ["classification", "reply"])
async def test_a_reply_and_a_classification_stored_at_once_still_meet(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    held: str,
) -> None:
    """One of them is stored in a transaction left open; the other arrives through its webhook
    on the application's own connections, waits for the enrollment's lock, and still ends
    with the reply classified."""
    campaign = await make_campaign(engine, STEPS, enrollments=1, current_step=1)
    enrollment = campaign.enrollment_id
    judged_at = T0 + timedelta(minutes=5)
    reply_key = f"reply-{uuid.uuid4().hex}"
    lemlist_payload = with_enrollment(load("lemlist", "emailsInterested"), "lemlist", enrollment)
    lemlist_payload["createdAt"] = iso(judged_at)
    async with create_sessionmaker(engine).begin() as holder:
        if held == "classification":
            classification = lemlist.translate(lemlist_payload, T0).classifications
            await record_provider_classifications(holder, classification)
            racing = asyncio.create_task(
                ok_events(client, webhook_key, [event(enrollment, "replied", 1, key=reply_key)])
            )
        else:
            reply_event = NewEvent(
                enrollment_ref=enrollment,
                event_type=EventType.REPLIED,
                provider=Provider.API,
                provider_event_id=reply_key,
                step_number=1,
                occurred_at=T0,
            )
            checked = check_event(Problems(), reply_event)
            await ingest(await in_session_transaction(holder), [checked])
            racing = asyncio.create_task(post_lemlist(client, lemlist_payload))
        await wait_for_lock_wait(engine, blocked_by=await backend_pid(holder))
        assert not racing.done()
    await racing
    stored = await sentiment_of(engine, await event_id(engine, reply_key))
    assert (stored["sentiment"], stored["sentiment_by"], stored["sentiment_at"]) == (
        "interested",
        "lemlist",
        judged_at,
    )
    assert stored["enrollment_sentiment"] == "interested"


async def _refreshes_while_storing(engine: AsyncEngine, enrollment: str, key: str) -> int:
    """How often storing one reply ran the sentiment refresh, read from the transaction's own
    function statistics (``track_functions``) before it commits."""
    reply_event = NewEvent(
        enrollment_ref=enrollment,
        event_type=EventType.REPLIED,
        provider=Provider.API,
        provider_event_id=key,
        step_number=1,
        occurred_at=T0,
    )
    async with create_sessionmaker(engine).begin() as session:
        await session.execute(text("SET LOCAL track_functions = 'all'"))
        checked = check_event(Problems(), reply_event)
        await ingest(await in_session_transaction(session), [checked])
        calls = await session.scalar(
            text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
                " WHERE funcname = 'refresh_reply_sentiments'"
            )
        )
    return int(calls or 0)


async def test_a_reply_refreshes_sentiments_only_where_something_was_classified(
    client: httpx.AsyncClient, engine: AsyncEngine, app: Starlette
) -> None:
    """The refresh on every stored reply halved batched ingestion; an enrollment nobody
    classified has nothing to refresh, so its replies must not run it."""
    campaign = await make_campaign(engine, STEPS, enrollments=2, current_step=1)
    plain, judged = campaign.enrollment_ids
    await lemlist_says(client, "emailsInterested", judged, T0 + timedelta(minutes=10))
    assert await _refreshes_while_storing(engine, plain, f"plain-{uuid.uuid4()}") == 0
    assert await _refreshes_while_storing(engine, judged, f"judged-{uuid.uuid4()}") == 1
