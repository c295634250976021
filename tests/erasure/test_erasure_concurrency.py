"""An erasure racing a webhook about the same contact, on real concurrent connections, leaves
no trace whichever commits first: the webhook's event is still stored and counted, without
the personal fields.

The guarantee: once an erasure has committed, nothing personal of the contact is in the
database, and what arrives later for its enrollments is stored without metadata (an event
that names an erased enrollment may quote the address again; it is counted, and its metadata
is not kept). Each interleaving is forced with the server's lock table, not with sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.driver import in_session_transaction
from app.domain.enums import Channel, EventType, Provider
from app.services.erasure import erase_contact
from app.services.ingestion.events import NewEvent, check_event, ingest
from app.services.validation import Problems
from testkit.campaigns import build_campaign
from tests.erasure.helpers import CONTACT_ID, EMAIL, METADATA, erase, lemlist, traces
from tests.lifecycle.helpers import enroll
from tests.locks import backend_pid, wait_for_lock_wait
from tests.webhooks.helpers import post_lemlist


async def enrolled(
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
) -> list[str]:
    """The person, active in two instances."""
    ids = []
    for _ in range(2):
        campaign = await build_campaign(app_sessionmaker, 1, template_type="email")
        ids.append(
            (await enroll(client, write_key, campaign.instance_id, CONTACT_ID, METADATA))["id"]
        )
    return ids


async def figures(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT event_type::text, metadata::text, enrollment_id IS NOT NULL"
                " FROM campaign_events ORDER BY event_type"
            )
        )
        return [tuple(row) for row in result]


async def test_a_webhook_arriving_during_the_erasure_waits_and_keeps_nothing(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
) -> None:
    """The erasure holds the enrollment when the unsubscribe arrives: the webhook's statement
    began before the erasure committed, yet stores neither the provider's fields nor the
    address in clear on the suppression list."""
    first, _ = await enrolled(app_sessionmaker, client, write_key)
    unsubscribe = lemlist("emailsUnsubscribed", first, "act-race-1", sequenceStep=0)
    async with app_sessionmaker() as session, session.begin():
        await erase_contact(session, CONTACT_ID, "tests")
        holder = await backend_pid(session)
        webhook = asyncio.create_task(post_lemlist(client, unsubscribe))
        await wait_for_lock_wait(engine, blocked_by=holder)
    response = await webhook
    assert response.status_code == 200, response.text

    assert await traces(engine) == []
    assert await figures(engine) == [("unsubscribed", "{}", True)]
    async with engine.connect() as connection:
        counted = await connection.scalar(
            text("SELECT count(*) FROM event_outcomes WHERE counter = 'unsubscribed'")
        )
        clear = await connection.scalar(text("SELECT count(*) FROM suppressions"))
    assert (counted, clear) == (1, 0)


async def test_an_erasure_arriving_during_a_webhook_waits_and_clears_it(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    """The webhook's transaction holds the enrollment (it is unsubscribing it) when the
    erasure arrives: the erasure waits for it, then clears what it stored."""
    first, _ = await enrolled(app_sessionmaker, client, write_key)
    p = Problems()
    unsubscribe = check_event(
        p,
        NewEvent(
            enrollment_ref=first,
            event_type=EventType.UNSUBSCRIBED,
            provider=Provider.LEMLIST,
            channel=Channel.EMAIL,
            provider_event_id="act-race-2",
            step_number=1,
            metadata={"leadEmail": EMAIL},
        ),
    )
    p.raise_if_any()
    async with app_sessionmaker() as session, session.begin():
        db = await in_session_transaction(session)
        assert (await ingest(db, [unsubscribe])).accepted == 1
        holder = await backend_pid(session)
        erasing = asyncio.create_task(erase(client, admin_key, CONTACT_ID))
        await wait_for_lock_wait(engine, blocked_by=holder)
    result = await erasing
    assert result["errors"] == [], result
    assert result["erasure"]["events"] == 1

    assert await traces(engine) == []
    assert await figures(engine) == [("unsubscribed", "{}", True)]


async def test_webhooks_racing_an_erasure_freely_leave_no_trace(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    enrollments = await enrolled(app_sessionmaker, client, write_key)
    kinds = ("emailsSent", "emailsOpened", "emailsClicked", "emailsUnsubscribed")
    webhooks = [
        post_lemlist(client, lemlist(kind, enrollment, f"act-free-{n}-{kind}", sequenceStep=0))
        for n, enrollment in enumerate(enrollments)
        for kind in kinds
    ]
    outcomes = await asyncio.gather(erase(client, admin_key, CONTACT_ID), *webhooks)
    assert outcomes[0]["errors"] == [], outcomes[0]
    assert all(response.status_code == 200 for response in outcomes[1:])

    assert await traces(engine) == []
    stored = await figures(engine)
    assert len(stored) == len(webhooks)
    assert {metadata for _, metadata, _ in stored} == {"{}"}
