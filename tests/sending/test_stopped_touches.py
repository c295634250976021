"""A touch waiting for its retry is cancelled once its enrollment stops by a webhook (reply,
unsubscribe, bounce) or its instance ends: it would never leave, so it must not count as
retrying forever."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from testkit.campaigns import build_campaign
from tests.sending.conftest import eventually, rows, running_sender, scalar

ONE_STEP = {
    "template_type": "email",
    "email_steps": [{"step_number": 1, "subject": "Hi", "body": "Hello {{first_name}}."}],
}


async def test_queued_touches_of_stopped_enrollments_are_cancelled(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    sender_settings: Settings,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 3, start=False, **ONE_STEP)  # type: ignore[arg-type]
    replied, waiting, other = campaign.enrollment_ids
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE campaign_instances SET status = 'active', started_at = now()"
                " WHERE id = CAST(:i AS uuid)"
            ),
            {"i": campaign.instance_id},
        )
        for enrollment_id in (replied, waiting):
            await connection.execute(
                text(
                    "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number,"
                    " provider, status, attempts, due_at, next_attempt_at, last_error)"
                    " VALUES (CAST(:e AS uuid), CAST(:i AS uuid), 'email', 1, 'postmark',"
                    " 'queued', 1, now(), now() + interval '1 hour', 'HTTP 500')"
                ),
                {"e": enrollment_id, "i": campaign.instance_id},
            )
        # What a reply webhook leaves: the enrollment stops, its dispatch is not looked at.
        await connection.execute(
            text("UPDATE enrollments SET status = 'replied' WHERE id = CAST(:e AS uuid)"),
            {"e": replied},
        )

    async def replied_touch_cancelled() -> bool:
        status = await scalar(
            engine,
            "SELECT status::text FROM dispatches WHERE enrollment_id = CAST(:e AS uuid)",
            e=replied,
        )
        return bool(status == "cancelled")

    async with running_sender(sender_settings):
        await eventually(replied_touch_cancelled)
    states = dict(
        await rows(
            engine,
            "SELECT enrollment_id::text, status::text FROM dispatches"
            " WHERE instance_id = CAST(:i AS uuid)",
            i=campaign.instance_id,
        )
    )
    assert states == {replied: "cancelled", waiting: "queued"}  # its retry is still ahead
    assert other not in states
