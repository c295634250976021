"""The sending side of an erasure: a touch a sender claimed before the erasure does not leave
after it (the check a sender makes just before a touch leaves says stop, even for the last
touch of a completed enrollment, which may otherwise still leave), and what the provider
answers about a touch already on its way is recorded without the address it quotes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.driver import in_session_transaction
from app.domain.enums import Channel, Provider
from app.services.sending import claims
from app.services.sending.claims import Claimed
from app.services.sending.record import Result, Timing, Verdict, record
from testkit.campaigns import build_campaign
from tests.erasure.helpers import CONTACT_ID, EMAIL, METADATA, erase, traces
from tests.lifecycle.helpers import enroll

SENDER = "sender-under-test"


async def claimed_touch(engine: AsyncEngine, enrollment_id: str, instance_id: str) -> uuid.UUID:
    """A touch of step 2 this sender holds, as a claim leaves it."""
    async with engine.begin() as connection:
        found = await connection.scalar(
            text(
                "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number,"
                " provider, status, attempts, due_at, claimed_by, claimed_until)"
                " VALUES (:e, :i, 'email', 2, 'postmark', 'sending', 1, now(), :sender,"
                "         now() + interval '1 minute') RETURNING id"
            ),
            {"e": enrollment_id, "i": instance_id, "sender": SENDER},
        )
    return uuid.UUID(str(found))


async def standing(
    app_sessionmaker: async_sessionmaker[AsyncSession], dispatch_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    async with app_sessionmaker() as session, session.begin():
        return await claims.standing(await in_session_transaction(session), SENDER, dispatch_ids)


async def test_a_claimed_touch_does_not_leave_after_the_erasure(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    running = await build_campaign(app_sessionmaker, 1, template_type="email")
    finished = await build_campaign(app_sessionmaker, 1, template_type="email")
    active = (await enroll(client, write_key, running.instance_id, CONTACT_ID, METADATA))["id"]
    done = (await enroll(client, write_key, finished.instance_id, CONTACT_ID, METADATA))["id"]
    async with engine.begin() as connection:
        # Its other touch of the last step completed it; this one was claimed before that.
        await connection.execute(
            text(
                "UPDATE enrollments SET status = 'completed', completed_at = now(),"
                " next_action_at = NULL WHERE id = :e"
            ),
            {"e": done},
        )
    touches = [
        await claimed_touch(engine, active, running.instance_id),
        await claimed_touch(engine, done, finished.instance_id),
    ]
    assert {verdict for verdict, _ in (await standing(app_sessionmaker, touches)).values()} == {
        "send"
    }

    result = await erase(client, admin_key, CONTACT_ID)
    assert result["errors"] == [], result

    assert await standing(app_sessionmaker, touches) == {
        touch: ("stop", "the contact was erased") for touch in touches
    }


async def test_a_provider_answer_after_the_erasure_is_recorded_without_the_address(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 1, template_type="email")
    enrollment_id = (await enroll(client, write_key, campaign.instance_id, CONTACT_ID, METADATA))[
        "id"
    ]
    touch = await claimed_touch(engine, enrollment_id, campaign.instance_id)
    assert (await erase(client, admin_key, CONTACT_ID))["errors"] == []

    # The touch was on its way when the erasure committed: the provider refuses it, quoting
    # the recipient, and the sender records that answer.
    claimed = Claimed(
        dispatch_id=touch,
        enrollment_id=uuid.UUID(enrollment_id),
        instance_id=uuid.UUID(campaign.instance_id),
        contact_id=CONTACT_ID,
        channel=Channel.EMAIL,
        step_number=2,
        provider=Provider.POSTMARK,
        attempts=1,
        due_at=datetime.now(UTC),
        uncertain=False,
        sendable=True,
        metadata=METADATA,
        step_found=True,
        subject="Hi",
        body="Hello",
        action=None,
    )
    refused = Result(
        claimed,
        Verdict.FAILED,
        error_code="POSTMARK_300",
        error=f"Invalid 'To' address: '{EMAIL}'",
    )
    async with app_sessionmaker() as session, session.begin():
        db = await in_session_transaction(session)
        recorded = await record(db, SENDER, [refused], Timing(1.0, 10.0, 3))
    assert len(recorded) == 1

    assert await traces(engine) == []
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                text(
                    "SELECT d.status::text, d.last_error, d.last_error_code, e.metadata::text"
                    " FROM dispatches d JOIN campaign_events e"
                    "   ON e.enrollment_id = d.enrollment_id AND e.event_type = 'failed'"
                )
            )
        ).all()
    assert [tuple(row) for row in stored] == [("failed", "[erased]", "POSTMARK_300", "{}")]
