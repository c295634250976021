"""SIGTERM stops a sender gracefully (app/cli/worker.py): the requests in flight finish and
are recorded, the touches it had claimed but not started go back to the queue, and it exits 0
without sending them; another sender then sends each of them, once."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from testkit.campaigns import build_campaign, linkedin_only
from testkit.fake_providers import Arrivals, FakeProviders, Reply
from testkit.senders import start_worker, stop_worker, worker_environment
from tests.sending.conftest import eventually
from tests.sending.reading import (
    dispatches,
    dispatches_reach,
    enrollments_reach,
)

CONTACTS = 200
CONCURRENCY = 8
IN_FLIGHT_S = 1.5
"""The first requests stay this long at the fake: the SIGTERM arrives while they are in
flight and every request slot is taken (so nothing else can have started)."""
LATENCY_S = 0.5


@pytest.mark.slow
async def test_sigterm_records_what_was_in_flight_and_hands_back_the_rest(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    arrivals = providers.script = Arrivals()
    arrivals.rule = lambda a: Reply.taken(
        IN_FLIGHT_S if len(arrivals.seen) <= CONCURRENCY else LATENCY_S
    )
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **linkedin_only())
    env = worker_environment(str(settings.database_url), providers.base_url)
    first = await start_worker(env, "--concurrency", str(CONCURRENCY))

    async def slots_full() -> bool:
        return len(arrivals.seen) >= CONCURRENCY

    await eventually(slots_full)
    await eventually(dispatches_reach(engine, campaign.instance_id, "sending", CONTACTS))
    code, stderr = await stop_worker(first)
    assert code == 0, stderr[-2000:]

    started = {a.dispatch_id for a in arrivals.seen}
    assert len(started) == CONCURRENCY, "nothing left after the SIGTERM"
    after_stop = {d.id: d for d in await dispatches(engine, campaign.instance_id)}
    assert len(after_stop) == CONTACTS
    for dispatch in after_stop.values():
        assert dispatch.claimed_by is None, "no claim outlives its sender"
        if dispatch.id in started:
            [taken] = [m for m in providers.taken() if m.dispatch_id == dispatch.id]
            assert (dispatch.status, dispatch.provider_message_id) == ("sent", taken.message_id)
        else:
            assert (dispatch.status, dispatch.attempts) == ("queued", 0)

    arrivals.rule = lambda a: Reply.taken()
    second = await start_worker(env)
    await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS))
    code, stderr = await stop_worker(second)
    assert code == 0, stderr[-2000:]

    assert len(arrivals.seen) == CONTACTS
    assert set(providers.taken_by_dispatch().values()) == {1}
    assert set(providers.taken_by_dispatch()) == set(after_stop)
