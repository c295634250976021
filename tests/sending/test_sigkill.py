"""A sender killed with SIGKILL at a random point loses nothing and sends nothing twice: after
a restart, every touch ends sent or unknown; Postmark touches whose answer died with the
process are found by the outbound message search, PhantomBuster ones are marked unknown and
never resent. A few trials here; ``bench/sender_kill.py`` runs many."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services.ingestion.counters import check_counters
from app.settings import Settings
from testkit.campaigns import build_campaign
from testkit.fake_providers import FakeProviders
from testkit.senders import kill_worker, start_worker, stop_worker, worker_environment
from tests.sending.conftest import eventually, rows, scalar

CONTACTS = 500  # one step, e-mail and LinkedIn: 1,000 touches due at once (the bench: 2,000)
TRIALS = 3
ONE_STEP = {
    "email_steps": [
        {
            "step_number": 1,
            "subject": "Hi {{first_name}}",
            "body": "Hello {{first_name}}, one step.",
        }
    ],
    "linkedin_steps": [
        {"step_number": 1, "action": "connection_request", "message": "Hi {{first_name}}"}
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
async def test_a_killed_sender_loses_nothing_and_duplicates_nothing(
    trial: int,
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    providers.latency_s = 0.02
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **ONE_STEP)  # type: ignore[arg-type]
    env = worker_environment(
        str(settings.database_url), providers.base_url, CAMPAIGN_SEND_LEASE_S="2"
    )
    first = await start_worker(env)

    async def some_taken() -> bool:
        return len(providers.taken()) > 0

    await eventually(some_taken)
    await asyncio.sleep(random.Random(trial).uniform(0.0, 1.5))
    await kill_worker(first)
    killed_at = len(providers.taken())
    launched_by_then = len(providers.taken("phantombuster"))

    second = await start_worker(env)

    async def all_settled() -> bool:
        if second.returncode is not None:
            _, stderr = await second.communicate()
            raise AssertionError(f"the second sender died: {stderr.decode()[-2000:]}")
        open_touches = await scalar(
            engine,
            "SELECT count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid)"
            " AND status IN ('queued', 'sending')",
            i=campaign.instance_id,
        )
        due = await scalar(
            engine,
            "SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
            " AND status = 'active' AND next_action_at IS NOT NULL",
            i=campaign.instance_id,
        )
        return open_touches == 0 and due == 0

    await eventually(all_settled, timeout_s=120)
    code, stderr = await stop_worker(second)
    assert code == 0, stderr[-2000:]

    dispatches = await rows(
        engine,
        "SELECT d.id::text, d.channel::text, d.status::text, d.provider_message_id"
        " FROM dispatches d WHERE d.instance_id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    assert len(dispatches) == 2 * CONTACTS, "every due touch has its dispatch: none lost"
    statuses = Counter((channel, status) for _, channel, status, _ in dispatches)
    assert statuses[("email", "unknown")] == 0, "Postmark is asked, never left unknown"
    assert set(statuses) <= {("email", "sent"), ("linkedin", "sent"), ("linkedin", "unknown")}

    at_provider = Counter(m.dispatch_id for m in providers.taken())
    assert max(at_provider.values()) == 1, "no touch reached its provider twice"
    for dispatch_id, channel, status, message_id in dispatches:
        if status == "sent":
            assert at_provider[dispatch_id] == 1, (channel, dispatch_id)
            assert message_id in {
                m.message_id for m in providers.taken() if m.dispatch_id == dispatch_id
            }
    unknown = [d for d in dispatches if d[2] == "unknown"]
    # An unknown touch was interrupted at PhantomBuster: at most once there, never resent.
    assert all(at_provider[d[0]] <= 1 for d in unknown)
    # Only touches the dead sender had started can be unknown: those PhantomBuster had taken by
    # the kill, and at most its requests in flight; the many more it held but had not started
    # were never marked as leaving, and the second sender sent them.
    assert len(unknown) <= launched_by_then + Settings().send_concurrency
    assert killed_at <= len(providers.taken())
    async with app_sessionmaker() as session:
        assert await check_counters(session) == []
