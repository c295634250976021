"""What the sender does when a provider refuses, fails or does not answer (domain.md,
"Sending": failures and one dispatch per touch), against the fake providers on loopback:
transient refusals are retried (after Retry-After, with backoff) and then sent once; a refusal
that names the message fails its enrollment with the provider's words; a lost answer is asked
about (Postmark) or left ``unknown`` for an operator (PhantomBuster), never resent blindly."""

from __future__ import annotations

import itertools

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from testkit.campaigns import build_campaign, email_only, linkedin_only
from testkit.fake_providers import Arrival, Arrivals, FakeProviders, Reply
from tests.sending.conftest import enroll, eventually, running_sender, sending_settings
from tests.sending.reading import (
    dispatches,
    dispatches_reach,
    enrollment_of,
    enrollment_row,
    enrollments_reach,
    events_of,
    retry_dispatch,
    sending_of,
)

ONE_STEP = {"email": email_only(1), "linkedin": linkedin_only()}
PROVIDER = {"email": "postmark", "linkedin": "phantombuster"}


@pytest.mark.parametrize("channel", ["email", "linkedin"])
async def test_a_429_is_retried_no_sooner_than_retry_after_then_sent_once(
    channel: str,
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> None:
    retry_after = 1
    # The sender's own backoff would come back sooner: only Retry-After explains the wait.
    assert sender_settings.send_retry_max_s < retry_after
    arrivals = Arrivals(lambda a: Reply.too_many(retry_after) if a.attempt == 0 else Reply.taken())
    providers.script = arrivals
    campaign = await build_campaign(app_sessionmaker, 1, **ONE_STEP[channel])
    [enrollment_id] = campaign.enrollment_ids

    async with running_sender(sender_settings):
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))

    first, second = arrivals.of(enrollment_id)
    assert second.at - first.at >= retry_after
    [dispatch] = await dispatches(engine, campaign.instance_id)
    [taken] = providers.taken(PROVIDER[channel])
    assert (dispatch.status, dispatch.attempts) == ("sent", 2)
    assert dispatch.provider_message_id == taken.message_id
    assert providers.taken_by_dispatch() == {dispatch.id: 1}


async def test_a_5xx_is_retried_with_backoff_then_sent_once(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    slow_backoff = sending_settings(
        settings,
        providers.base_url,
        send_retry_base_s=0.2,
        send_retry_max_s=1.0,
    )
    failures = 2
    arrivals = Arrivals(lambda a: Reply.server_error() if a.attempt < failures else Reply.taken())
    providers.script = arrivals
    campaign = await build_campaign(app_sessionmaker, 1, **email_only(1))
    [enrollment_id] = campaign.enrollment_ids

    async with running_sender(slow_backoff):
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))

    attempts = arrivals.of(enrollment_id)
    assert len(attempts) == failures + 1
    for n, (before, after) in enumerate(itertools.pairwise(attempts), start=1):
        # The n-th retry waits at least half of base * 2^(n-1): the fixed half of the
        # doubled delay (the other half is jitter).
        doubled = min(slow_backoff.send_retry_max_s, slow_backoff.send_retry_base_s * 2 ** (n - 1))
        assert after.at - before.at >= doubled / 2, n
    [dispatch] = await dispatches(engine, campaign.instance_id)
    assert (dispatch.status, dispatch.attempts) == ("sent", failures + 1)
    assert dispatch.last_error is None
    assert providers.taken_by_dispatch() == {dispatch.id: 1}


async def test_a_touch_out_of_attempts_fails_and_waits_for_an_operator(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    direct_client: httpx.AsyncClient,
    write_key: str,
) -> None:
    limited = sending_settings(
        settings,
        providers.base_url,
        send_max_attempts=3,
    )
    refusing = True
    arrivals = Arrivals(lambda a: Reply.server_error() if refusing else Reply.taken())
    providers.script = arrivals
    campaign = await build_campaign(app_sessionmaker, 1, **email_only(1))
    [enrollment_id] = campaign.enrollment_ids

    async with running_sender(limited):
        await eventually(dispatches_reach(engine, campaign.instance_id, "failed", 1))
        [dispatch] = await dispatches(engine, campaign.instance_id)
        assert dispatch.attempts == limited.send_max_attempts
        assert len(arrivals.of(enrollment_id)) == limited.send_max_attempts
        assert providers.taken() == []
        assert dispatch.last_error_code == "HTTP 500"
        assert Reply.server_error().body["Message"] in dispatch.last_error
        row = await enrollment_row(engine, enrollment_id)
        assert (row.status, row.current_step, row.next_action_at) == ("active", 0, None)
        assert await events_of(engine, enrollment_id) == []
        assert (await sending_of(direct_client, write_key, campaign.instance_id))["failed"] == 1

        refusing = False
        payload = await retry_dispatch(direct_client, write_key, dispatch.id)
        assert payload["errors"] == []
        assert payload["dispatch"]["status"] == "QUEUED"
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))

    [dispatch] = await dispatches(engine, campaign.instance_id)
    assert dispatch.status == "sent"
    assert providers.taken_by_dispatch() == {dispatch.id: 1}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (406, "You tried to send to recipient(s) that have been marked as inactive."),
        (300, "Invalid 'To' address: 'person0@example.com'."),
    ],
)
async def test_a_refusal_naming_the_recipient_fails_that_enrollment_only(
    code: int,
    message: str,
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> None:
    def refuse_person0(arrival: Arrival) -> Reply:
        if arrival.payload["To"] == "person0@example.com":
            return Reply(422, {"ErrorCode": code, "Message": message})
        return Reply.taken()

    arrivals = Arrivals(refuse_person0)
    providers.script = arrivals
    steps = 2
    campaign = await build_campaign(app_sessionmaker, 3, **email_only(steps))
    refused = await enrollment_of(engine, campaign.instance_id, "crm-0")  # person0@example.com
    others = [e for e in campaign.enrollment_ids if e != refused]

    async with running_sender(sender_settings):
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 2))
        await eventually(enrollments_reach(engine, campaign.instance_id, "failed", 1))

    assert (await enrollment_row(engine, refused)).status == "failed"
    assert len(arrivals.of(refused)) == 1, "a permanent refusal is not retried"
    [dispatch] = [
        d for d in await dispatches(engine, campaign.instance_id) if d.enrollment_id == refused
    ]
    assert (dispatch.status, dispatch.last_error_code) == ("failed", str(code))
    [failed] = await events_of(engine, refused)
    assert failed.event_type == "failed"
    assert str(failed.metadata["code"]) == str(code)
    assert failed.metadata["message"] == message
    for enrollment_id in others:
        steps_taken = sorted(
            m.step_number for m in providers.taken() if m.enrollment_id == enrollment_id
        )
        assert steps_taken == list(range(1, steps + 1))
    assert max(providers.taken_by_dispatch().values()) == 1


async def test_a_lost_postmark_answer_is_found_by_the_search_not_sent_again(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> None:
    arrivals = Arrivals(lambda a: Reply.dropped() if a.attempt == 0 else Reply.taken())
    providers.script = arrivals
    campaign = await build_campaign(app_sessionmaker, 1, **email_only(1))
    [enrollment_id] = campaign.enrollment_ids

    async with running_sender(sender_settings):
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))

    [dispatch] = await dispatches(engine, campaign.instance_id)
    [taken] = providers.taken("postmark")
    assert dispatch.id in providers.searches
    assert (dispatch.status, dispatch.provider_message_id) == ("sent", taken.message_id)
    assert len(arrivals.of(enrollment_id)) == 1, "asked, not sent again"
    assert len(providers.received) == 1


async def test_a_lost_phantombuster_answer_is_unknown_until_an_operator_retries(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
    direct_client: httpx.AsyncClient,
    write_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 1, **linkedin_only())
    [lost] = campaign.enrollment_ids
    arrivals = Arrivals(
        lambda a: Reply.dropped() if a.enrollment_id == lost and a.attempt == 0 else Reply.taken()
    )
    providers.script = arrivals

    async with running_sender(sender_settings):
        await eventually(dispatches_reach(engine, campaign.instance_id, "unknown", 1))
        # Another contact, enrolled afterwards, is sent: the sender has claimed again since
        # the unknown touch was recorded, and left it alone.
        [later] = await enroll(app_sessionmaker, campaign.instance_id, 1)
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))
        assert (await enrollment_row(engine, later)).status == "completed"

        [dispatch] = [
            d for d in await dispatches(engine, campaign.instance_id) if d.enrollment_id == lost
        ]
        assert dispatch.status == "unknown"
        assert len(arrivals.of(lost)) == 1, "never resent blindly"
        assert len([m for m in providers.taken() if m.enrollment_id == lost]) == 1
        row = await enrollment_row(engine, lost)
        assert (row.status, row.current_step, row.next_action_at) == ("active", 0, None)
        assert (await sending_of(direct_client, write_key, campaign.instance_id))["unknown"] == 1

        payload = await retry_dispatch(direct_client, write_key, dispatch.id)
        assert payload["errors"] == []
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 2))

    [dispatch] = [
        d for d in await dispatches(engine, campaign.instance_id) if d.enrollment_id == lost
    ]
    assert dispatch.status == "sent"
    assert len(arrivals.of(lost)) == 2, "sent again because the operator said so"


async def test_a_retried_touch_still_leaves_after_its_sibling_completed_the_enrollment(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> None:
    """The last step on two channels: the e-mail goes at once and completes the enrollment,
    the LinkedIn touch of the same step is refused once; its retry is still sent."""
    arrivals = Arrivals(
        lambda a: (
            Reply.server_error()
            if a.provider == "phantombuster" and a.attempt == 0
            else Reply.taken()
        )
    )
    providers.script = arrivals
    campaign = await build_campaign(
        app_sessionmaker,
        1,
        email_steps=email_only(1)["email_steps"],
        linkedin_steps=linkedin_only()["linkedin_steps"],
    )

    async with running_sender(sender_settings):
        await eventually(dispatches_reach(engine, campaign.instance_id, "sent", 2))

    assert sorted(m.provider for m in providers.taken()) == ["phantombuster", "postmark"]
    assert set(providers.taken_by_dispatch().values()) == {1}
    assert (await enrollment_row(engine, campaign.enrollment_ids[0])).status == "completed"
