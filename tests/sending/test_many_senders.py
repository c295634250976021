"""Any number of sender processes share the work through PostgreSQL alone: 4 senders, 2,000
contacts, a 3-step multi-channel sequence with no delays, and every touch reaches its provider
exactly once, counted there."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services.ingestion.counters import check_counters
from app.settings import Settings
from testkit.campaigns import build_campaign
from testkit.fake_providers import FakeProviders
from testkit.senders import worker_environment, workers
from tests.sending.conftest import all_sent, eventually, rows

CONTACTS = 2_000
SENDERS = 4
TOUCHES_PER_CONTACT = 5  # email steps 1, 2, 3; LinkedIn steps 1 and 3


@pytest.mark.slow
async def test_four_senders_deliver_every_touch_exactly_once(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
) -> None:
    providers.latency_s = 0.005
    campaign = await build_campaign(app_sessionmaker, CONTACTS)
    env = worker_environment(str(settings.database_url), providers.base_url)

    async def every_touch_sent() -> bool:
        return await all_sent(
            engine, campaign.instance_id, CONTACTS, CONTACTS * TOUCHES_PER_CONTACT
        )

    async with workers(env, SENDERS):
        await eventually(every_touch_sent, timeout_s=240)

    taken = providers.taken()
    assert len(taken) == CONTACTS * TOUCHES_PER_CONTACT
    by_touch = Counter((m.enrollment_id, m.provider, m.step_number) for m in taken)
    assert set(by_touch.values()) == {1}, "no touch reached its provider twice"
    assert {e for e, _, _ in by_touch} == set(campaign.enrollment_ids)
    order: dict[tuple[str | None, str], list[int | None]] = defaultdict(list)
    for message in sorted(taken, key=lambda m: m.at):
        order[(message.enrollment_id, message.provider)].append(message.step_number)
    assert all(steps == sorted(steps) for steps in order.values()), "steps leave in order"
    for message in providers.taken("postmark")[:50]:
        number = message.payload["To"].removeprefix("person").removesuffix("@example.com")
        assert f"Ada{number}" in message.payload["TextBody"]

    claimed_by = await rows(
        engine,
        "SELECT status::text, count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid)"
        " GROUP BY 1",
        i=campaign.instance_id,
    )
    assert dict(claimed_by) == {"sent": CONTACTS * TOUCHES_PER_CONTACT}
    async with app_sessionmaker() as session:
        assert await check_counters(session) == []
