"""An erasure racing an enrollment of the same person, on real concurrent connections: the
enrollment either commits first and is erased with the others, or waits for the erasure and is
refused as suppressed; it never slips in between, holding the address unerased (the senders
compare addresses in clear, so it would be contacted). Interleavings forced with the lock
table, not with sleeps."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services.enrollment import ContactInput, bulk_enroll
from app.services.erasure import erase_contact
from testkit.campaigns import build_campaign
from tests.erasure.helpers import CONTACT_ID, METADATA, erase, traces
from tests.lifecycle.helpers import ENROLL_CONTACT, assert_refused, enroll, mutate
from tests.locks import backend_pid, wait_for_lock_wait


async def two_instances(
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
) -> str:
    """The person enrolled in one instance; the id of a second one, where it is not yet."""
    first = await build_campaign(app_sessionmaker, 1, template_type="email")
    second = await build_campaign(app_sessionmaker, 1, template_type="email")
    await enroll(client, write_key, first.instance_id, CONTACT_ID, METADATA)
    return second.instance_id


async def test_an_enrollment_in_progress_is_erased_with_the_others(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    other = await two_instances(app_sessionmaker, client, write_key)
    async with app_sessionmaker() as session, session.begin():
        result = await bulk_enroll(session, other, [ContactInput(CONTACT_ID, METADATA)])
        assert len(result.enrolled_ids) == 1
        holder = await backend_pid(session)
        erasing = asyncio.create_task(erase(client, admin_key, CONTACT_ID))
        await wait_for_lock_wait(engine, blocked_by=holder)
    erased = await erasing
    assert erased["errors"] == [], erased
    assert erased["erasure"]["enrollments"] == 2
    assert await traces(engine) == []


async def test_an_enrollment_during_the_erasure_waits_and_is_refused(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
) -> None:
    other = await two_instances(app_sessionmaker, client, write_key)
    request = {"instanceId": other, "input": {"contactId": CONTACT_ID, "metadata": METADATA}}
    async with app_sessionmaker() as session, session.begin():
        await erase_contact(session, CONTACT_ID, "tests")
        holder = await backend_pid(session)
        enrolling = asyncio.create_task(
            mutate(client, write_key, ENROLL_CONTACT, "enrollContact", request)
        )
        await wait_for_lock_wait(engine, blocked_by=holder)
    assert_refused(await enrolling, "enrollment", "SUPPRESSED", ["input", "metadata", "email"])
    assert await traces(engine) == []
