"""What a provider's report does to the suppression list, through the Postmark webhook: a hard
bounce, a spam complaint or an unsubscribe suppresses the enrollment's address and stops its
running enrollments in every instance; a soft bounce does not; an enrollment that was removed
or failed keeps its status, but its address is still suppressed; two instances suppressing
one address at once both succeed, with one suppression."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.settings import Settings
from app.web.asgi import create_app
from testkit.campaigns import Campaign, build_campaign
from tests.sending.conftest import rows
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import load, post_postmark, with_enrollment

IDS = itertools.count(9_000_000_000)


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """The application with the webhook secrets set (overrides the root ``app``)."""
    application = create_app(webhook_settings(settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def second_client(settings: Settings, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    """Another application on the same database: its own pool, its own transactions."""
    async with AsyncExitStack() as stack:
        application = create_app(webhook_settings(settings))
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application)
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )


def report(record: str, enrollment_id: str, address: str, **fields: Any) -> dict[str, Any]:
    """A Postmark webhook record about ``enrollment_id``, unique (fresh ids)."""
    payload = with_enrollment(load("postmark", record), "postmark", enrollment_id)
    payload |= {"ID": next(IDS), "MessageID": str(uuid.uuid4())}
    payload["Email" if "Email" in payload else "Recipient"] = address
    return payload | fields


async def deliver(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    response = await post_postmark(client, payload)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1, response.text


async def suppressions(engine: AsyncEngine) -> dict[str, tuple[str, Any]]:
    """address -> (reason, the event that caused it)."""
    found = await rows(engine, "SELECT address, reason::text, event_id FROM suppressions")
    return {a: (r, e) for a, r, e in found}


async def event_of(engine: AsyncEngine, provider_event_id: str) -> Any:
    [[found]] = await rows(
        engine, "SELECT id FROM campaign_events WHERE provider_event_id = :p", p=provider_event_id
    )
    return found


async def states(engine: AsyncEngine) -> dict[tuple[str, str], str]:
    """(instance, contact) -> status."""
    found = await rows(
        engine, "SELECT instance_id::text, contact_id, status::text FROM enrollments"
    )
    return {(i, c): s for i, c, s in found}


def of(campaign: Campaign, contact: int, ids: dict[str, str]) -> str:
    """The enrollment id of contact ``crm-<contact>`` in ``campaign``."""
    return next(e for e in campaign.enrollment_ids if ids[e] == f"crm-{contact}")


async def two_instances(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], contacts: int
) -> tuple[Campaign, Campaign, dict[str, str]]:
    """Two running e-mail instances with the same contacts (person<n>@example.com)."""
    first = await build_campaign(sessionmaker, contacts, template_type="email")
    second = await build_campaign(sessionmaker, contacts, template_type="email")
    found = await rows(engine, "SELECT id::text, contact_id FROM enrollments")
    return first, second, dict(found)


async def test_a_hard_bounce_suppresses_and_a_soft_one_does_not(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
) -> None:
    first, second, ids = await two_instances(engine, app_sessionmaker, 3)
    before = await states(engine)

    hard = report("Bounce", of(first, 0, ids), "person0@example.com", Type="HardBounce")
    await deliver(client, hard)
    await deliver(client, report("Bounce", of(first, 1, ids), "x@y.z", Type="Transient"))
    await deliver(client, report("Bounce", of(second, 2, ids), "x@y.z", Type="SoftBounce"))

    assert await suppressions(engine) == {
        "person0@example.com": ("bounced", await event_of(engine, str(hard["ID"])))
    }
    after = await states(engine)
    # The hard-bounced address stops everywhere; a soft bounce stops no one else.
    assert after[(second.instance_id, "crm-0")] == "bounced"
    assert after[(first.instance_id, "crm-0")] == "bounced"
    assert after[(second.instance_id, "crm-1")] == before[(second.instance_id, "crm-1")]
    assert after[(first.instance_id, "crm-2")] == before[(first.instance_id, "crm-2")]
    assert before[(first.instance_id, "crm-2")] == "active"


async def test_a_spam_complaint_suppresses_with_its_reason(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
) -> None:
    first, second, ids = await two_instances(engine, app_sessionmaker, 2)
    complaint = report("SpamComplaint", of(first, 1, ids), "person1@example.com")
    await deliver(client, complaint)
    assert await suppressions(engine) == {
        "person1@example.com": ("spam_complaint", await event_of(engine, str(complaint["ID"])))
    }
    after = await states(engine)
    assert after[(second.instance_id, "crm-1")] == "unsubscribed"
    assert after[(second.instance_id, "crm-0")] == "active"


async def test_an_unsubscribe_for_a_removed_or_failed_enrollment_still_suppresses(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
) -> None:
    first, second, ids = await two_instances(engine, app_sessionmaker, 3)
    removed, failed = of(first, 0, ids), of(first, 1, ids)
    async with engine.begin() as connection:
        for enrollment_id, status in ((removed, "removed"), (failed, "failed")):
            await connection.execute(
                text(
                    "UPDATE enrollments SET status = CAST(:s AS enrollment_status),"
                    " next_action_at = NULL WHERE id = CAST(:e AS uuid)"
                ),
                {"s": status, "e": enrollment_id},
            )

    await deliver(client, report("SubscriptionChange", removed, "person0@example.com"))
    await deliver(client, report("SubscriptionChange", failed, "person1@example.com"))

    found = await suppressions(engine)
    assert {a: r for a, (r, _) in found.items()} == {
        "person0@example.com": "unsubscribed",
        "person1@example.com": "unsubscribed",
    }
    after = await states(engine)
    assert after[(first.instance_id, "crm-0")] == "removed"  # they keep their status
    assert after[(first.instance_id, "crm-1")] == "failed"
    assert after[(second.instance_id, "crm-0")] == "unsubscribed"  # the others stop
    assert after[(second.instance_id, "crm-1")] == "unsubscribed"
    assert after[(second.instance_id, "crm-2")] == "active"


async def test_two_instances_suppressing_one_address_at_once_both_succeed(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
) -> None:
    """For each address, an unsubscribe from one instance and a hard bounce from the other
    arrive together through two applications: every request succeeds, each address has one
    suppression, and every enrollment of those addresses has stopped."""
    addresses = 8
    first, second, ids = await two_instances(engine, app_sessionmaker, addresses)
    requests = []
    for n in range(addresses):
        address = f"person{n}@example.com"
        unsubscribe = report("SubscriptionChange", of(first, n, ids), address)
        bounce = report("Bounce", of(second, n, ids), address, Type="HardBounce")
        requests += [deliver(client, unsubscribe), deliver(second_client, bounce)]
    results = await asyncio.gather(*requests, return_exceptions=True)
    assert [r for r in results if r is not None] == []

    found = await suppressions(engine)
    assert sorted(found) == sorted(f"person{n}@example.com" for n in range(addresses))
    [[count]] = await rows(engine, "SELECT count(*) FROM suppressions")
    assert count == addresses
    events = await rows(engine, "SELECT id, event_type::text FROM campaign_events")
    reason_of = {"unsubscribed": "unsubscribed", "bounced": "bounced"}
    by_id = {event_id: reason_of[kind] for event_id, kind in events}
    for reason, event_id in found.values():
        assert by_id[event_id] == reason  # the event that won is the one that caused it
    after = await states(engine)
    assert set(after.values()) <= {"unsubscribed", "bounced"}
    assert len(after) == 2 * addresses
