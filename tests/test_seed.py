"""The demo data: the promised shape, consistent counters, and idempotence."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.seed import is_empty, seed
from app.domain.enums import TemplateType
from app.services.audience import audience_of
from app.services.ingestion.counters import RECOMPUTED_COUNTERS_SQL
from app.services.sending import config as sending_config
from app.services.sending.config import missing_for_start
from app.services.sequence import used_actions, used_channels

COUNTS = """
SELECT (SELECT count(*) FROM campaign_templates) AS templates,
       (SELECT count(*) FROM email_steps) AS email_steps,
       (SELECT count(*) FROM linkedin_steps) AS linkedin_steps,
       (SELECT count(*) FROM campaign_instances) AS instances,
       (SELECT count(*) FROM enrollments) AS enrollments,
       (SELECT count(*) FROM campaign_events) AS events,
       (SELECT count(*) FROM instance_transitions) AS transitions
"""


async def _counts(session: AsyncSession) -> dict[str, int]:
    return dict((await session.execute(text(COUNTS))).mappings().one())


async def test_seed_adds_the_promised_demo_data(session: AsyncSession) -> None:
    assert await is_empty(session)
    assert await seed(session) is True
    counts = await _counts(session)
    assert {k: v for k, v in counts.items() if k != "transitions"} == {
        "templates": 4,
        "email_steps": 5,
        "linkedin_steps": 6,
        "instances": 3,
        "enrollments": 5,
        "events": 16,
    }
    kinds = (
        await session.execute(
            text("SELECT type::text, path_type::text, is_active FROM campaign_templates")
        )
    ).all()
    assert {k[0] for k in kinds} == {"email", "linkedin", "multi_channel"}
    assert ("email", "dynamic_ai", False) in [tuple(k) for k in kinds]
    statuses = await session.scalars(text("SELECT status::text FROM campaign_instances"))
    assert sorted(statuses) == ["active", "draft", "paused"]
    providers = await session.scalars(text("SELECT DISTINCT provider::text FROM campaign_events"))
    assert {"lemlist", "postmark", "phantombuster"} <= set(providers)
    channels = await session.scalars(text("SELECT DISTINCT channel::text FROM campaign_events"))
    assert set(channels) == {"email", "linkedin"}


async def test_seed_is_idempotent(session: AsyncSession) -> None:
    await seed(session)
    before = await _counts(session)
    assert await seed(session) is False
    assert await _counts(session) == before
    assert not await is_empty(session)


async def test_seeded_counters_match_the_events(session: AsyncSession) -> None:
    await seed(session)
    stored = (
        await session.execute(
            text(
                "SELECT id AS instance_id, total_enrolled, total_sent, total_delivered,"
                " total_opened, total_clicked, total_replied, total_bounced, total_unsubscribed"
                " FROM campaign_instances ORDER BY id"
            )
        )
    ).all()
    ids = [row.instance_id for row in stored]
    recomputed = (
        await session.execute(
            text(f"SELECT * FROM ({RECOMPUTED_COUNTERS_SQL}) r ORDER BY instance_id"),
            {"ids": ids},
        )
    ).all()
    assert [tuple(r) for r in stored] == [tuple(r) for r in recomputed]
    # The data is not trivially zero: the active instance saw opens and a reply.
    assert any(row.total_opened > 0 and row.total_replied > 0 for row in stored)


async def test_the_demo_obeys_the_sending_rules(session: AsyncSession) -> None:
    """`make run` runs a sender on the demo: each instance's config gives its providers what
    a start needs, and each running contact has the addresses and variables its template's
    steps need (otherwise the first pass fails the contact)."""
    assert await seed(session) is True
    instances = (
        await session.execute(
            text(
                "SELECT i.id, i.provider_config, t.id AS template_id, t.type::text AS type"
                " FROM campaign_instances i JOIN campaign_templates t ON t.id = i.template_id"
            )
        )
    ).all()
    for instance in instances:
        template_type = TemplateType(instance.type)
        config = sending_config.parse(instance.provider_config)
        actions = await used_actions(session, instance.template_id, template_type)
        assert missing_for_start(config, used_channels(template_type), actions) == [], instance
        audience = await audience_of(session, instance.template_id, template_type)
        running = await session.scalars(
            text(
                "SELECT metadata FROM enrollments WHERE instance_id = :id"
                " AND status IN ('enrolled', 'active', 'paused')"
            ),
            {"id": instance.id},
        )
        for metadata in running:
            assert audience.refusal(metadata) is None, (instance, metadata)
