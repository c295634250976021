"""When the sender sends (domain.md, "Sending"): inside the instance's window, by the
database's clock and the instance's time zone; under its daily limit; and between times it
sleeps (no polling) until the next work or a NOTIFY, which wakes it at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.observability.sql_observer import recording
from app.services import lifecycle
from app.settings import Settings
from testkit.campaigns import SENDING_CONFIG, build_campaign, email_only
from testkit.fake_providers import FakeProviders
from tests.sending.conftest import enroll, eventually, running_sender, scalar, sending_settings
from tests.sending.reading import (
    asleep,
    dispatches,
    enrollments_reach,
    outlooks,
    sending_of,
)

CONTACTS = 3
ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris", "Asia/Kolkata")


async def looked_again(statements: list[str], times: int = 1) -> None:
    target = outlooks(statements) + times

    async def looked() -> bool:
        return outlooks(statements) >= target

    await eventually(looked)


async def local_now(engine: AsyncEngine) -> tuple[str, datetime]:
    """A zone where it is the middle of the day now by the database's clock (so a window
    two hours either side stays within one local day), and the local time there."""
    now: datetime = await scalar(engine, "SELECT now()")
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name))
        if 3 <= local.hour <= 20:
            return name, local
    raise AssertionError("one of the zones is at midday")


def window(zone: str, local: datetime, start_h: int, end_h: int) -> dict[str, Any]:
    clock = "%H:%M"
    return SENDING_CONFIG | {
        "timezone": zone,
        "send_from": (local + timedelta(hours=start_h)).strftime(clock),
        "send_until": (local + timedelta(hours=end_h)).strftime(clock),
    }


async def test_the_window_is_read_with_the_database_clock_and_a_closed_one_idles(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    direct_client: httpx.AsyncClient,
    write_key: str,
) -> None:
    zone, local = await local_now(engine)
    kw = email_only(1)
    open_now = await build_campaign(
        app_sessionmaker, CONTACTS, config=window(zone, local, -1, 1), **kw
    )
    closed = await build_campaign(
        app_sessionmaker, CONTACTS, config=window(zone, local, 1, 2), **kw
    )
    sleepy = sending_settings(settings, providers.base_url, send_idle_s=60.0)

    async with running_sender(sleepy) as sender:
        with recording(sender.engine) as statements:
            await eventually(enrollments_reach(engine, open_now.instance_id, "completed", CONTACTS))
            await asleep(statements)
            before = len(statements)
            await asyncio.sleep(2.0)  # the span over which statements are counted
            idle = statements[before:]
        # Due work it may not send yet wakes it no sooner than the window opens (or idle_s):
        # at most one look (plan, claims, outlook); a sender that polled would run many.
        assert outlooks(idle) <= 1, idle
        assert len(idle) <= 5, idle

    assert await dispatches(engine, closed.instance_id) == []
    assert {m.enrollment_id for m in providers.taken()} == set(open_now.enrollment_ids)
    sending = await sending_of(direct_client, write_key, closed.instance_id)
    assert sending["dueNow"] == CONTACTS, "still due, waiting for the window"
    first_due = await scalar(
        engine,
        "SELECT min(next_action_at) FROM enrollments WHERE instance_id = CAST(:i AS uuid)",
        i=closed.instance_id,
    )
    assert datetime.fromisoformat(sending["nextDueAt"]) == first_due


async def test_a_daily_limit_caps_the_touches_of_the_local_day(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
    direct_client: httpx.AsyncClient,
    write_key: str,
) -> None:
    zone, _ = await local_now(engine)
    limit, contacts = 3, 5
    config = SENDING_CONFIG | {"timezone": zone, "daily_limit": limit}
    campaign = await build_campaign(app_sessionmaker, contacts, config=config, **email_only(1))

    async with running_sender(sender_settings) as sender:
        with recording(sender.engine) as statements:
            await eventually(enrollments_reach(engine, campaign.instance_id, "completed", limit))
            await looked_again(statements, times=2)  # it looked for more, and found no room

    assert len(providers.taken()) == limit
    assert len(await dispatches(engine, campaign.instance_id)) == limit
    waiting = await scalar(
        engine,
        "SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
        " AND status = 'active' AND next_action_at <= now()",
        i=campaign.instance_id,
    )
    assert waiting == contacts - limit, "the others are still due"
    sending = await sending_of(direct_client, write_key, campaign.instance_id)
    assert (sending["sentToday"], sending["dueNow"]) == (limit, contacts - limit)


async def test_a_notify_wakes_a_sleeping_sender(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    idle_s, within_s = 60.0, 20.0
    sleepy = sending_settings(settings, providers.base_url, send_idle_s=idle_s)
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **email_only(1), start=False)

    async def listening() -> bool:
        found = await scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query ILIKE 'LISTEN%campaign_sender%'",
        )
        return bool(found)

    async with running_sender(sleepy) as sender:
        with recording(sender.engine) as statements:
            await eventually(listening)
            await asleep(statements)  # nothing to do: it sleeps for idle_s unless woken

            async with app_sessionmaker.begin() as session:
                await lifecycle.transition(session, campaign.instance_id, "start", "tests")
            reached = enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS)
            await eventually(reached, timeout_s=within_s)

            await asleep(statements)
            await enroll(app_sessionmaker, campaign.instance_id, CONTACTS, CONTACTS + 1)
            reached = enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS + 2)
            await eventually(reached, timeout_s=within_s)

    assert within_s < idle_s
    assert len(providers.taken()) == CONTACTS + 2
