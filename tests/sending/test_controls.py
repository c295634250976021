"""Operators' controls during a run (domain.md, "Sending" and "Suppression"): pausing an
instance or an enrollment, suppressing an address, and a provider's unsubscribe stop the
touches at once. What was already in flight at the provider when the control committed is
recorded; nothing else leaves, not even touches a sender had claimed but not started.

Each test makes the moment sharp: the first touches take a while at the fake and fill every
request slot of the sender, the control commits while they are in flight (nothing else can
leave then), and what the fake received afterwards is the verdict."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.observability.sql_observer import recording
from app.services import enrollment, lifecycle
from app.settings import Settings
from app.worker import sender as sender_module
from testkit.campaigns import build_campaign, email_only
from testkit.fake_providers import Arrivals, FakeProviders, Reply
from tests.sending.conftest import eventually, running_sender, sending_settings
from tests.sending.reading import (
    dispatches,
    dispatches_reach,
    enrollment_of,
    enrollment_row,
    enrollments_reach,
    outlooks,
)
from tests.webhooks.helpers import iso, load, post_postmark

CONCURRENCY = 2
CONTACTS = 5
IN_FLIGHT_S = 1.5
TWO_LINKEDIN_STEPS: dict[str, Any] = {
    "template_type": "linkedin",
    "linkedin_steps": [
        {"step_number": 1, "action": "profile_visit", "delay_hours": 0},
        {"step_number": 2, "action": "message", "message": "Hi {{first_name}}", "delay_hours": 0},
    ],
}


def slow_start() -> Arrivals:
    """The first CONCURRENCY messages stay IN_FLIGHT_S at the fake; the others are quick."""
    arrivals = Arrivals()
    arrivals.rule = lambda a: Reply.taken(IN_FLIGHT_S if len(arrivals.seen) <= CONCURRENCY else 0.0)
    return arrivals


def control_settings(settings: Settings, providers: FakeProviders) -> Settings:
    return sending_settings(
        settings,
        providers.base_url,
        send_concurrency=CONCURRENCY,
        send_idle_s=0.5,
    )


async def during_flight(
    engine: AsyncEngine,
    providers: FakeProviders,
    arrivals: Arrivals,
    instance_id: str,
    control: Callable[[], Awaitable[None]],
) -> float:
    """Once every slot holds a slow touch and the rest are claimed but not started, apply
    ``control``; the loop time at which it had committed."""

    async def slots_full() -> bool:
        return len(arrivals.seen) >= CONCURRENCY

    await eventually(slots_full)
    await eventually(dispatches_reach(engine, instance_id, "sending", CONTACTS))
    await control()
    committed = asyncio.get_running_loop().time()
    assert providers.received == [], "the slow touches were still in flight at the commit"
    return committed


async def went_idle(statements: list[str], rounds: int = 2) -> None:
    """Wait until the sender has looked for work ``rounds`` more times and found none."""
    target = outlooks(statements) + rounds

    async def looked() -> bool:
        return outlooks(statements) >= target

    await eventually(looked)


async def test_pausing_the_instance_stops_every_touch_not_in_flight_until_resumed(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pause wakes no sender: "at once" must hold for a sender whose view of which
    # instances may send is older than the pause (here: kept until a NOTIFY).
    monkeypatch.setattr(sender_module, "PLAN_TTL_S", 3600.0)
    arrivals = providers.script = slow_start()
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **TWO_LINKEDIN_STEPS)

    async def pause() -> None:
        async with app_sessionmaker.begin() as session:
            await lifecycle.transition(session, campaign.instance_id, "pause", "tests")

    async with running_sender(control_settings(settings, providers)) as sender:
        with recording(sender.engine) as statements:
            paused_at = await during_flight(
                engine, providers, arrivals, campaign.instance_id, pause
            )
            await eventually(dispatches_reach(engine, campaign.instance_id, "sent", CONCURRENCY))
            await eventually(dispatches_reach(engine, campaign.instance_id, "sending", 0))
            await went_idle(statements)

        assert arrivals.after(paused_at) == [], "nothing left after the pause committed"
        assert len(providers.taken()) == CONCURRENCY, "what was in flight was taken"
        statuses = sorted(d.status for d in await dispatches(engine, campaign.instance_id))
        assert statuses == sorted(["sent"] * CONCURRENCY + ["queued"] * (CONTACTS - CONCURRENCY))

        async with app_sessionmaker.begin() as session:
            await lifecycle.transition(session, campaign.instance_id, "resume", "tests")
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS))

    assert len(providers.taken()) == CONTACTS * 2
    assert set(providers.taken_by_dispatch().values()) == {1}
    assert sorted(len(arrivals.of(e)) for e in campaign.enrollment_ids) == [2] * CONTACTS


async def test_a_paused_enrollment_gets_no_touch_until_resumed(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    arrivals = providers.script = slow_start()
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **TWO_LINKEDIN_STEPS)
    chosen: dict[str, str] = {}

    async def pause_two() -> None:
        # One whose first touch is at the fake, one whose first touch is claimed, not started.
        chosen["in_flight"] = str(arrivals.seen[0].enrollment_id)
        started = {a.enrollment_id for a in arrivals.seen}
        chosen["held"] = next(e for e in campaign.enrollment_ids if e not in started)
        for enrollment_id in chosen.values():
            async with app_sessionmaker.begin() as session:
                await enrollment.change_enrollment(session, enrollment_id, "pause")

    async with running_sender(control_settings(settings, providers)):
        await during_flight(engine, providers, arrivals, campaign.instance_id, pause_two)
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS - 2))
        await eventually(dispatches_reach(engine, campaign.instance_id, "sending", 0))

        assert arrivals.of(chosen["held"]) == []
        steps_sent = [a.payload["argument"]["stepNumber"] for a in arrivals.of(chosen["in_flight"])]
        assert steps_sent == [1], "the touch in flight, and nothing after it"
        for enrollment_id in chosen.values():
            assert (await enrollment_row(engine, enrollment_id)).status == "paused"

        for enrollment_id in chosen.values():
            async with app_sessionmaker.begin() as session:
                await enrollment.change_enrollment(session, enrollment_id, "resume")
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS))

    assert set(providers.taken_by_dispatch().values()) == {1}
    assert sorted(len(arrivals.of(e)) for e in campaign.enrollment_ids) == [2] * CONTACTS


async def test_add_suppression_stops_the_address_at_once(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    direct_client: httpx.AsyncClient,
    admin_key: str,
) -> None:
    arrivals = providers.script = slow_start()
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **TWO_LINKEDIN_STEPS)
    chosen: dict[str, str] = {}

    async def suppress_two() -> None:
        chosen["in_flight"] = str(arrivals.seen[0].enrollment_id)
        started = {a.enrollment_id for a in arrivals.seen}
        chosen["held"] = next(e for e in campaign.enrollment_ids if e not in started)
        for enrollment_id in chosen.values():
            url = (await enrollment_row(engine, enrollment_id)).metadata["linkedin_url"]
            response = await direct_client.post(
                "/graphql",
                json={
                    "query": "mutation($a: String!) { addSuppression(input:"
                    " {address: $a, channel: LINKEDIN}) { suppression { id } errors { code } } }",
                    "variables": {"a": url},
                },
                headers={"authorization": f"Bearer {admin_key}"},
            )
            assert response.json()["data"]["addSuppression"]["errors"] == [], response.text

    async with running_sender(control_settings(settings, providers)):
        await during_flight(engine, providers, arrivals, campaign.instance_id, suppress_two)
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS - 2))
        await eventually(dispatches_reach(engine, campaign.instance_id, "sending", 0))

    assert arrivals.of(chosen["held"]) == [], "a suppressed address gets nothing more"
    assert len(arrivals.of(chosen["in_flight"])) == 1, "only what was already at the provider"
    for enrollment_id in chosen.values():
        assert (await enrollment_row(engine, enrollment_id)).status == "unsubscribed"
    touches = await dispatches(engine, campaign.instance_id)
    assert [d.status for d in touches if d.enrollment_id == chosen["held"]] == ["cancelled"]


async def test_a_postmark_unsubscribe_stops_the_address_in_every_instance(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    direct_client: httpx.AsyncClient,
) -> None:
    arrivals = providers.script = Arrivals(
        lambda a: Reply.taken(IN_FLIGHT_S if a.payload["Metadata"]["step_number"] == "1" else 0.0)
    )
    steps = 3
    first = await build_campaign(app_sessionmaker, 2, **email_only(steps))
    second = await build_campaign(app_sessionmaker, 2, **email_only(steps))
    leaving = await enrollment_of(engine, first.instance_id, "crm-0")  # person0@example.com
    unsubscribe = load("postmark", "SubscriptionChange") | {
        "MessageID": str(uuid.uuid4()),
        "Recipient": "person0@example.com",
        "ChangedAt": iso(datetime.now(UTC)),
        "Metadata": {"enrollment_id": leaving, "step_number": "1"},
    }

    async with running_sender(control_settings(settings, providers)):

        async def first_steps_in_flight() -> bool:
            return len(arrivals.seen) == 4

        await eventually(first_steps_in_flight)
        response = await post_postmark(direct_client, unsubscribe)
        assert response.status_code == 200, response.text
        assert providers.received == [], "the first steps were still in flight"
        for campaign in (first, second):
            await eventually(enrollments_reach(engine, campaign.instance_id, "completed", 1))
            await eventually(enrollments_reach(engine, campaign.instance_id, "unsubscribed", 1))

    to_person0 = [m for m in providers.received if m.payload["To"] == "person0@example.com"]
    assert sorted(m.step_number for m in to_person0) == [1, 1], "only what was in flight"
    to_person1 = [m for m in providers.taken() if m.payload["To"] == "person1@example.com"]
    assert sorted(m.step_number for m in to_person1) == sorted(list(range(1, steps + 1)) * 2)
    for campaign in (first, second):
        person0 = await enrollment_of(engine, campaign.instance_id, "crm-0")
        assert (await enrollment_row(engine, person0)).status == "unsubscribed"
