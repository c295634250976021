"""A started campaign runs: the sender delivers every due touch through the providers' APIs
(real HTTP servers on loopback), once, in step order, personalized, and the enrollments and
counters follow."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services.ingestion.counters import check_counters
from app.settings import Settings
from testkit.campaigns import build_campaign
from testkit.fake_providers import FakeProviders
from tests.sending.conftest import all_sent, eventually, rows, running_sender, scalar

CONTACTS = 30


async def test_every_touch_is_delivered_once_in_order_and_the_sequence_completes(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> None:
    campaign = await build_campaign(app_sessionmaker, CONTACTS)

    async def every_touch_sent() -> bool:
        return await all_sent(engine, campaign.instance_id, CONTACTS, CONTACTS * 5)

    async with running_sender(sender_settings):
        await eventually(every_touch_sent)

    # Each contact: email steps 1, 2, 3 and LinkedIn steps 1 (visit) and 3 (message).
    per_contact: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for message in providers.taken():
        per_contact[str(message.enrollment_id)].append((message.provider, message.step_number))
    assert set(per_contact) == set(campaign.enrollment_ids)
    for touches in per_contact.values():
        assert sorted(touches) == sorted(
            [
                ("postmark", 1),
                ("postmark", 2),
                ("postmark", 3),
                ("phantombuster", 1),
                ("phantombuster", 3),
            ]
        )
        for provider in ("postmark", "phantombuster"):
            steps = [s for p, s in touches if p == provider]
            assert steps == sorted(steps), "a channel's steps leave in order"
    assert max(providers.taken_by_dispatch().values()) == 1
    assert len(providers.taken()) == CONTACTS * 5

    first = next(m for m in providers.taken("postmark") if m.step_number == 1)
    number = first.payload["To"].removeprefix("person").removesuffix("@example.com")
    assert first.payload["Subject"] == f"Step 1 for Ada{number}"
    assert first.payload["TextBody"] == f"Hello Ada{number} at Company {number}, step 1."
    assert first.payload["From"] == '"The Team" <team@example.com>'
    visit = next(m for m in providers.taken("phantombuster") if m.step_number == 3)
    assert visit.payload["id"] == "agent-message"
    assert visit.payload["argument"]["message"].startswith("Hi Ada")

    sent = await rows(
        engine,
        "SELECT status::text, count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid)"
        " GROUP BY 1",
        i=campaign.instance_id,
    )
    assert dict(sent) == {"sent": CONTACTS * 5}
    async with app_sessionmaker() as session:
        assert await check_counters(session) == []
    total_sent = await scalar(
        engine,
        "SELECT i.total_sent + coalesce((SELECT sum(sent) FROM instance_counter_shards s"
        " WHERE s.instance_id = i.id), 0) FROM campaign_instances i WHERE i.id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    assert total_sent == CONTACTS * 5
