"""A sender that meets an error it cannot handle exits with a failure instead of hanging
(app/worker/sender.py): a supervisor restarts it, and the touches it held go to whoever takes
their leases over. A sender that hangs holds its leases (it keeps renewing them) and sends
nothing, which no supervisor notices. The touches it sent but could not record are found at
the provider by the sender that takes them over, not sent again."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from testkit.campaigns import build_campaign, email_only
from testkit.fake_providers import FakeProviders
from testkit.senders import kill_worker, start_worker, stop_worker, worker_environment
from tests.sending.conftest import eventually
from tests.sending.reading import enrollments_reach

CONTACTS = 2_000
REFUSAL = "recording refused by this test"
LEASE_S = 2
"""Short, so that the second sender soon takes over what the first held."""


async def refuse_recording(engine: AsyncEngine, refused: bool) -> None:
    """Make every attempt to record a touch as sent fail (with an error that is not an
    outage), or stop doing so."""
    statements = (
        [
            "CREATE FUNCTION test_refuse_sent() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$",
            "CREATE TRIGGER test_refuse_sent BEFORE UPDATE ON dispatches FOR EACH ROW"
            " WHEN (NEW.status = 'sent') EXECUTE FUNCTION test_refuse_sent()",
        ]
        if refused
        else [
            "DROP TRIGGER IF EXISTS test_refuse_sent ON dispatches",
            "DROP FUNCTION IF EXISTS test_refuse_sent()",
        ]
    )
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_sender_that_cannot_record_exits_and_another_finishes_its_touches_once(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **email_only(1))
    env = worker_environment(
        str(settings.database_url), providers.base_url, CAMPAIGN_SEND_LEASE_S=str(LEASE_S)
    )
    await refuse_recording(engine, True)
    try:
        first = await start_worker(env)
        try:
            _, stderr = await asyncio.wait_for(first.communicate(), 30)
        finally:
            await kill_worker(first)
    finally:
        await refuse_recording(engine, False)
    assert first.returncode == 1
    assert REFUSAL in stderr.decode(errors="replace")
    reached = len(providers.taken())
    assert reached > 0, "touches reached the provider before the sender gave up"

    second = await start_worker(env)
    await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS))
    code, stderr = await stop_worker(second)
    assert code == 0, stderr[-2000:]
    assert set(providers.taken_by_dispatch().values()) == {1}, "none twice"
    assert len(providers.taken_by_dispatch()) == CONTACTS, "none lost"
    assert len(providers.taken()) == CONTACTS, "those the first sender sent were found, not resent"
