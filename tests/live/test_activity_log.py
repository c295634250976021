"""The activity log under the triggers of migration 0009, read as the hub reads it: every
write path appends and announces in its own transaction, and two transactions committing out
of order never leave an item behind a position a reader already passed."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.enums import ActivityKind
from app.services.live.activity import START, ActivityItem, Position, items_after
from tests.test_notifications import dsn_of
from tests.webhooks.helpers import Campaign

WAIT_S = 10.0

INSERT_EVENT = (
    "INSERT INTO campaign_events (id, instance_id, enrollment_id, event_type, channel, provider,"
    " occurred_at, metadata) VALUES ($1, $2, $3, 'opened', 'email', 'postmark', now(), '{}')"
)


async def read_all(engine: AsyncEngine, instance_id: str, position: Position) -> list[ActivityItem]:
    async with engine.connect() as connection:
        batch = (await items_after(connection, {instance_id: position}, 100))[instance_id]
    return batch.items


async def read_until(
    engine: AsyncEngine, instance_id: str, position: Position, count: int
) -> list[ActivityItem]:
    """Read on from ``position`` as a subscriber does, until ``count`` items came (other
    sessions' transactions on the shared server may hold the horizon back a moment)."""
    delivered: list[ActivityItem] = []
    async with asyncio.timeout(WAIT_S):
        while len(delivered) < count:
            batch = await read_all(engine, instance_id, position)
            delivered += batch
            if batch:
                position = batch[-1].position
            else:
                await asyncio.sleep(0.02)
    return delivered


async def test_two_transactions_committing_out_of_order_are_delivered_once_each(
    app: object, engine: AsyncEngine, campaign: Campaign, database_url: str
) -> None:
    early = await asyncpg.connect(dsn_of(database_url))
    late = await asyncpg.connect(dsn_of(database_url))
    instance = uuid.UUID(campaign.instance_id)
    enrollment = uuid.UUID(campaign.enrollment_id)
    first, second = uuid.uuid4(), uuid.uuid4()
    try:
        # ``late`` takes its transaction id first but inserts second; ``early`` inserts first
        # (the smaller sequence value) and commits first: neither order may lose an item.
        await late.execute("BEGIN")
        await late.fetchval("SELECT pg_current_xact_id()")
        await early.execute("BEGIN")
        await early.execute(INSERT_EVENT, first, instance, enrollment)
        await late.execute(INSERT_EVENT, second, instance, enrollment)
        await early.execute("COMMIT")

        # A reader now: ``first`` is committed (and its sequence value is the smaller), but a
        # transaction older than it still runs: nothing is final yet, nothing is handed out.
        seen = await read_all(engine, campaign.instance_id, START)
        assert seen == []

        await late.execute("COMMIT")
        delivered = await read_until(engine, campaign.instance_id, START, 2)
        assert sorted(item.event_id for item in delivered) == sorted([str(first), str(second)])
        assert [item.kind for item in delivered] == [ActivityKind.EVENT] * 2
        # Read on from the last position: nothing more, nothing twice.
        assert await read_all(engine, campaign.instance_id, delivered[-1].position) == []
        assert await read_all(engine, campaign.instance_id, delivered[0].position) == delivered[1:]
    finally:
        await early.close()
        await late.close()


async def test_a_transaction_running_in_another_database_holds_nothing_back(
    app: object, engine: AsyncEngine, campaign: Campaign, database_url: str
) -> None:
    """Transaction ids are the server's, not the database's: a transaction left running in
    another database of the same server (a restore, a long load) writes nothing here and must
    not hold this database's items back."""
    other = make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    elsewhere = await asyncpg.connect(dsn_of(other))
    here = await asyncpg.connect(dsn_of(database_url))
    event_id = uuid.uuid4()
    try:
        await elsewhere.execute("BEGIN")
        await elsewhere.fetchval("SELECT pg_current_xact_id()")
        await here.execute(
            INSERT_EVENT,
            event_id,
            uuid.UUID(campaign.instance_id),
            uuid.UUID(campaign.enrollment_id),
        )
        [item] = await read_until(engine, campaign.instance_id, START, 1)
        assert item.event_id == str(event_id)
    finally:
        await elsewhere.close()
        await here.close()


async def test_status_changes_and_dispatch_outcomes_are_appended_and_announced(
    app: object, engine: AsyncEngine, campaign: Campaign, database_url: str
) -> None:
    """Whoever writes (here plain SQL, as the CLI or the sender would), the triggers append
    one item per changed row and announce the instance once per statement, at commit."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(dsn_of(database_url))
    writer = await asyncpg.connect(dsn_of(database_url))
    await listener.add_listener("campaign_activity", lambda *args: heard.put_nowait(args[3]))
    instance = uuid.UUID(campaign.instance_id)
    try:
        async with writer.transaction():
            await writer.execute(
                "UPDATE enrollments SET status = 'paused' WHERE instance_id = $1", instance
            )
            # Not a status change: no item.
            await writer.execute(
                "UPDATE enrollments SET current_step = current_step WHERE instance_id = $1",
                instance,
            )
            await writer.execute(
                "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number,"
                " provider, status, due_at, next_attempt_at)"
                " VALUES ($1, $2, 'email', 1, 'postmark', 'queued', now(), now())",
                uuid.UUID(campaign.enrollment_id),
                instance,
            )
            await writer.execute(
                "UPDATE dispatches SET status = 'failed', last_error = 'refused',"
                " next_attempt_at = NULL WHERE instance_id = $1",
                instance,
            )
            assert heard.empty(), "announced before its transaction committed"
        assert await asyncio.wait_for(heard.get(), WAIT_S) == campaign.instance_id
        delivered = await read_until(engine, campaign.instance_id, START, 4)
    finally:
        await writer.close()
        await listener.close()
    assert [item.kind for item in delivered] == [ActivityKind.ENROLLMENT_STATUS] * 3 + [
        ActivityKind.DISPATCH
    ]
    assert {item.enrollment_id for item in delivered[:3]} == set(campaign.enrollment_ids)
    assert {item.status for item in delivered} == {"paused", "failed"}
    assert heard.empty(), "one notification per instance per statement, deduplicated at commit"
