"""lemlist as the e-mail provider runs its own sequence (domain.md, "Sending": providers): the
sender adds each lead once, at its first due touch, with our ``enrollmentId``; later steps are
lemlist's, and advance the enrollment through lemlist's webhooks, never through a touch of
ours. A lost answer to the lead push is pushed again: lemlist says the lead is already there,
which counts as sent, and the campaign still holds one lead."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from testkit.campaigns import SENDING_CONFIG, build_campaign, email_only
from testkit.fake_providers import Arrivals, FakeProviders, Reply
from tests.sending.conftest import eventually, running_sender, sending_settings
from tests.sending.reading import (
    dispatches,
    dispatches_reach,
    enrollment_row,
)
from tests.webhooks.helpers import counters, iso, load, post_lemlist

LEMLIST_CAMPAIGN = "cam_sender_tests"
STEPS = 3


def emails_sent(enrollment_id: str, step: int) -> dict[str, object]:
    """lemlist's ``emailsSent`` activity for our ``step`` (lemlist counts from 0)."""
    return load("lemlist", "emailsSent") | {
        "_id": f"act_{uuid.uuid4().hex[:12]}",
        "campaignId": LEMLIST_CAMPAIGN,
        "enrollmentId": enrollment_id,
        "sequenceStep": step - 1,
        "createdAt": iso(datetime.now(UTC)),
    }


async def test_lemlist_gets_each_lead_once_and_its_webhooks_run_the_sequence(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    direct_client: httpx.AsyncClient,
) -> None:
    config = SENDING_CONFIG | {"email_provider": "lemlist", "lemlist_campaign_id": LEMLIST_CAMPAIGN}
    campaign = await build_campaign(app_sessionmaker, 2, config=config, **email_only(STEPS))
    followed, lost_answer = campaign.enrollment_ids
    arrivals = Arrivals(
        lambda a: (
            Reply.dropped() if a.enrollment_id == lost_answer and a.attempt == 0 else Reply.taken()
        )
    )
    providers.script = arrivals

    # Webhooks do not wake senders (the next step is normally hours away): look often.
    quick = sending_settings(settings, providers.base_url, send_idle_s=0.3)
    async with running_sender(quick):
        await eventually(dispatches_reach(engine, campaign.instance_id, "sent", 2))

        leads = providers.taken("lemlist")
        assert sorted(m.enrollment_id for m in leads) == sorted(campaign.enrollment_ids)
        for lead in leads:
            number = lead.payload["email"].removeprefix("person").removesuffix("@example.com")
            assert lead.payload["firstName"] == f"Ada{number}"
            assert lead.payload["enrollmentId"] == lead.enrollment_id
        assert len(arrivals.of(lost_answer)) == 2, "the lead was pushed again after the lost answer"
        for dispatch in await dispatches(engine, campaign.instance_id):
            assert (dispatch.channel, dispatch.step_number) == ("email", 1)

        # lemlist reports its sends; each one advances the enrollment, and the sender, for
        # whom the next step is then due, leaves it to lemlist (clears it, sends nothing).
        for step in range(1, STEPS + 1):
            response = await post_lemlist(direct_client, emails_sent(followed, step))
            assert response.status_code == 200, response.text

            async def reached(step: int = step) -> bool:
                row = await enrollment_row(engine, followed)
                return bool(row.current_step == step and row.next_action_at is None)

            await eventually(reached)

    row = await enrollment_row(engine, followed)
    assert row.status == "completed"
    assert (await enrollment_row(engine, lost_answer)).current_step == 0, "nothing reported yet"
    assert len(await dispatches(engine, campaign.instance_id)) == 2, "no touch of ours after"
    assert len(providers.taken("lemlist")) == 2
    assert [m for m in providers.received if m.provider != "lemlist"] == []
    assert (await counters(engine, campaign.instance_id))["total_sent"] == STEPS
