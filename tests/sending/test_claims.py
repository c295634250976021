"""Claiming due touches (``app.services.sending.claims.claim_due``) with real transactions on
separate connections: concurrent claims take disjoint touches and together all of them, never
waiting for each other's rows (SKIP LOCKED); a daily limit holds however many claim at once;
and the due enrollments are found through the partial ``next_action_at`` index."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.driver import DriverConnection
from app.domain.enums import Provider
from app.services.sending.claims import Claimed, claim_due, renew_leases
from app.services.sending.schedule import Plan, plan
from testkit.campaigns import SENDING_CONFIG, build_campaign
from tests.locks import wait_for_lock_wait
from tests.sending.conftest import rows, scalar

LEASE_S = 60.0
ONE_EMAIL_STEP = [{"step_number": 1, "subject": "Hi", "body": "Hello {{first_name}}."}]
MULTI_STEPS = {
    "email_steps": ONE_EMAIL_STEP,
    "linkedin_steps": [{"step_number": 1, "action": "profile_visit", "delay_hours": 0}],
}


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[DriverConnection]:
    """A transaction on a connection of its own, committed when the block ends. A claim that
    had to wait for another transaction's rows fails after 5 s instead of waiting."""
    async with engine.connect() as connection:
        db = await DriverConnection.under(connection)
        async with db.driver.transaction():
            await db.execute("SET LOCAL lock_timeout = '5s'")
            yield db


async def current_plan(engine: AsyncEngine) -> Plan:
    async with transaction(engine) as db:
        found = await plan(db, lambda provider: True, lambda provider: False)
    assert found.eligible, found
    return found


async def claim(engine: AsyncEngine, current: Plan, batch: int, sender: str) -> list[Claimed]:
    async with transaction(engine) as db:
        return await claim_due(db, current.eligible, batch, sender, LEASE_S)


async def due_ids(engine: AsyncEngine, instance_id: str) -> set[str]:
    found = await rows(
        engine,
        "SELECT id::text FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
        " AND status = 'active' AND next_action_at <= now()",
        i=instance_id,
    )
    return {row[0] for row in found}


def enrollments_of(claimed: list[Claimed]) -> set[str]:
    return {str(c.enrollment_id) for c in claimed}


async def test_claims_held_open_side_by_side_take_disjoint_touches_without_waiting(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await build_campaign(
        app_sessionmaker, 25, template_type="email", email_steps=ONE_EMAIL_STEP
    )
    due = await due_ids(engine, campaign.instance_id)
    assert len(due) == 25
    current = await current_plan(engine)
    batch = 10
    async with contextlib.AsyncExitStack() as stack:
        # Each transaction stays open (its rows locked) while the next one claims.
        taken: list[list[Claimed]] = []
        for n in range(4):
            db = await stack.enter_async_context(transaction(engine))
            taken.append(await claim_due(db, current.eligible, batch, f"sender-{n}", LEASE_S))
    sizes = [len(t) for t in taken]
    assert sizes == [batch, batch, len(due) - 2 * batch, 0]
    claimed = [enrollments_of(t) for t in taken]
    assert sum(len(c) for c in claimed) == len(set().union(*claimed)), "disjoint"
    assert set().union(*claimed) == due

    stored = await rows(
        engine,
        "SELECT enrollment_id::text, claimed_by, status::text FROM dispatches"
        " WHERE instance_id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    assert len(stored) == len(due)
    holders = {enrollment: holder for enrollment, holder, _ in stored}
    for n, ids in enumerate(claimed):
        assert all(holders[i] == f"sender-{n}" for i in ids)
    assert {status for *_, status in stored} == {"sending"}
    assert await claim(engine, current, batch, "late") == []  # nothing is due any more


async def test_concurrent_claims_share_the_due_set_exactly(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await build_campaign(
        app_sessionmaker, 60, template_type="email", email_steps=ONE_EMAIL_STEP
    )
    due = await due_ids(engine, campaign.instance_id)
    current = await current_plan(engine)
    senders = 4
    all_claimed = asyncio.Barrier(senders)

    async def sender(n: int) -> list[Claimed]:
        async with transaction(engine) as db:
            found = await claim_due(db, current.eligible, 20, f"sender-{n}", LEASE_S)
            await all_claimed.wait()  # no one commits before everyone has claimed
            return found

    taken = await asyncio.gather(*(sender(n) for n in range(senders)))
    claimed = [enrollments_of(t) for t in taken]
    assert sum(len(c) for c in claimed) == len(due)
    assert set().union(*claimed) == due
    dispatches = await scalar(
        engine,
        "SELECT count(DISTINCT enrollment_id) FROM dispatches WHERE instance_id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    assert dispatches == len(due)


async def test_a_claim_stops_suppressed_contacts_without_a_touch(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Suppressions written behind the enrollments' backs (as a concurrent transaction would
    have): the claim itself checks every channel's address, however the contact's is
    written, and stops the contact, bounced when every hit is a bounce."""
    await build_campaign(app_sessionmaker, 4, **MULTI_STEPS)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE enrollments SET metadata = metadata || jsonb_build_object("
                "'linkedin_url', 'www.LinkedIn.com/in/Person-2/?trk=x') WHERE contact_id = 'crm-2'"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO suppressions (channel, address, reason) VALUES"
                " ('email', 'person0@example.com', 'bounced'),"
                " ('linkedin', 'linkedin.com/in/person-1', 'manual'),"
                " ('linkedin', 'linkedin.com/in/person-2', 'spam_complaint')"
            )
        )
    current = await current_plan(engine)
    taken = await claim(engine, current, 100, "sender")

    contact_of = dict(await rows(engine, "SELECT id::text, contact_id FROM enrollments"))
    assert {contact_of[i] for i in enrollments_of(taken)} == {"crm-3"}
    found = await rows(
        engine, "SELECT contact_id, status::text, next_action_at IS NULL FROM enrollments"
    )
    assert {c: (s, cleared) for c, s, cleared in found} == {
        "crm-0": ("bounced", True),
        "crm-1": ("unsubscribed", True),
        "crm-2": ("unsubscribed", True),
        # claimed, not updated: its open dispatches keep it out of later claims
        "crm-3": ("active", False),
    }
    assert await scalar(engine, "SELECT count(DISTINCT enrollment_id) FROM dispatches") == 1
    again = await claim(engine, await current_plan(engine), 100, "another sender")
    assert again == [], "an enrollment with open touches is not claimed twice"


# --- the daily limit ----------------------------------------------------------------------------

LIMIT = 7


async def touches_per_enrollment(engine: AsyncEngine, template_id: str) -> int:
    """Active steps numbered 1 over the template's channels: each is one touch."""
    return int(
        await scalar(
            engine,
            "SELECT (SELECT count(*) FROM email_steps WHERE template_id = CAST(:t AS uuid)"
            " AND step_number = 1 AND is_active)"
            " + (SELECT count(*) FROM linkedin_steps WHERE template_id = CAST(:t AS uuid)"
            " AND step_number = 1 AND is_active)",
            t=template_id,
        )
    )


async def spent(engine: AsyncEngine, instance_id: str) -> tuple[int, int]:
    """(touches claimed, what the day's quota row says was used)."""
    found = await rows(
        engine,
        "SELECT (SELECT count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid)),"
        " (SELECT coalesce(sum(used), 0) FROM send_quotas WHERE instance_id = CAST(:i AS uuid))",
        i=instance_id,
    )
    return int(found[0][0]), int(found[0][1])


@pytest.mark.parametrize("template_type", ["email", "multi_channel"])
async def test_concurrent_claims_never_exceed_the_daily_limit(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession], template_type: str
) -> None:
    steps: dict[str, Any] = (
        {"email_steps": ONE_EMAIL_STEP} if template_type == "email" else MULTI_STEPS
    )
    campaign = await build_campaign(
        app_sessionmaker,
        30,
        template_type=template_type,
        config=SENDING_CONFIG | {"daily_limit": LIMIT},
        **steps,
    )
    per_enrollment = await touches_per_enrollment(engine, campaign.template_id)
    current = await current_plan(engine)

    taken = await asyncio.gather(*(claim(engine, current, 100, f"s{n}") for n in range(3)))

    expected = LIMIT // per_enrollment * per_enrollment  # a step's touches leave together
    assert sum(len(t) for t in taken) == expected
    assert await spent(engine, campaign.instance_id) == (expected, expected)
    assert await claim(engine, current, 100, "later") == []


async def test_a_claim_waits_for_the_quota_another_is_spending_then_takes_only_the_rest(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await build_campaign(
        app_sessionmaker,
        30,
        template_type="email",
        email_steps=ONE_EMAIL_STEP,
        config=SENDING_CONFIG | {"daily_limit": LIMIT},
    )
    current = await current_plan(engine)
    first_batch = 4
    async with transaction(engine) as first:
        held = await claim_due(first, current.eligible, first_batch, "first", LEASE_S)
        assert len(held) == first_batch
        pid = (await first.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        second = asyncio.create_task(claim(engine, current, 100, "second"))
        await wait_for_lock_wait(engine, blocked_by=pid)  # on the day's quota row
        assert not second.done()
    rest = await second
    assert len(rest) == LIMIT - first_batch
    assert not enrollments_of(held) & enrollments_of(rest)
    assert await spent(engine, campaign.instance_id) == (LIMIT, LIMIT)


# --- the due index ------------------------------------------------------------------------------

DUE_INDEX = "ix_enrollments_next_action_at_due"


class Explaining(DriverConnection):
    """The connection claim_due is given: its claim statement is explained, not run."""

    __slots__ = ("plans",)

    def __init__(self, db: DriverConnection) -> None:
        super().__init__(db._observed, db.driver)
        self.plans: list[Any] = []

    async def fetch(self, sql: str, *args: Any, record_class: type[Any] | None = None) -> list[Any]:
        if "candidates AS MATERIALIZED" not in sql:
            return await super().fetch(sql, *args, record_class=record_class)
        found = (await super().fetch("EXPLAIN (FORMAT JSON) " + sql, *args))[0][0]
        self.plans.append((json.loads(found) if isinstance(found, str) else found)[0]["Plan"])
        return []


def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]


async def test_the_candidates_are_found_through_the_partial_due_index(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await build_campaign(
        app_sessionmaker, 0, template_type="email", email_steps=ONE_EMAIL_STEP
    )
    # 50,000 enrollments as a running instance has them: most finished, some waiting for a
    # later step, a few due now.
    async with engine.begin() as connection:
        db = await DriverConnection.under(connection)
        await db.execute(
            """
            INSERT INTO enrollments (instance_id, contact_id, status, current_step,
                                     next_action_at, completed_at, metadata)
            SELECT $1::uuid, 'bulk-' || n,
                   CASE WHEN n % 10 < 8 THEN 'completed' ELSE 'active' END::enrollment_status,
                   CASE WHEN n % 10 < 8 THEN 1 ELSE 0 END,
                   CASE WHEN n % 10 = 8 THEN now() + make_interval(hours => n % 48)
                        WHEN n % 10 = 9 THEN now() - make_interval(mins => n % 600) END,
                   CASE WHEN n % 10 < 8 THEN now() END,
                   jsonb_build_object('email', 'bulk' || n || '@example.com',
                                      'first_name', 'Bulk')
            FROM generate_series(1, 50000) AS n
            """,
            campaign.instance_id,
        )
        await db.execute("ANALYZE enrollments")
        await db.execute("ANALYZE dispatches")
    current = await current_plan(engine)

    async with transaction(engine) as db:
        explaining = Explaining(db)
        assert await claim_due(explaining, current.eligible, 500, "explain", LEASE_S) == []
    [claim_plan] = explaining.plans
    [candidates] = [n for n in nodes(claim_plan) if n.get("Subplan Name") == "CTE candidates"]
    used = {n.get("Index Name") for n in nodes(candidates)}
    assert DUE_INDEX in used, json.dumps(candidates, indent=1)[:3000]
    assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "enrollments"
                   for n in nodes(candidates))  # fmt: skip
    assert current.eligible[0].email_provider is Provider.POSTMARK


async def test_a_lease_renewal_skips_the_rows_a_recording_holds_instead_of_waiting(
    engine: AsyncEngine, app_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A renewal that waited for a recording's rows, holding the rest, deadlocked with it
    (the recording locks its batch in another order): the sender died under load."""
    campaign = await build_campaign(
        app_sessionmaker, 6, template_type="email", email_steps=ONE_EMAIL_STEP
    )
    taken = await claim(engine, await current_plan(engine), 100, "renewer")
    assert len(taken) == 6
    held, *others = sorted(str(c.dispatch_id) for c in taken)

    async with transaction(engine) as recording:
        await recording.execute("SELECT 1 FROM dispatches WHERE id = $1::uuid FOR UPDATE", held)
        async with transaction(engine) as beat:  # lock_timeout: it fails if it waits
            await renew_leases(beat, "renewer", 3_600)

    leases = dict(
        await rows(
            engine,
            "SELECT id::text, claimed_until > now() + interval '30 minutes' FROM dispatches"
            " WHERE instance_id = CAST(:i AS uuid)",
            i=campaign.instance_id,
        )
    )
    assert leases == {held: False} | {other: True for other in others}
