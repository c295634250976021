"""Two ``campaign-api serve`` processes over one database: a webhook posted to one reaches a
subscriber connected to the other (each process LISTENs once and fans out to its own), and a
key's open subscriptions are counted across both."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette

from testkit.servers import several
from tests.live.client import ACTIVITY, STATUS, WAIT_S, connect
from tests.live.test_subscriptions import post
from tests.webhooks.helpers import Campaign, event


async def test_a_webhook_posted_to_one_process_reaches_a_subscriber_of_the_other(
    app: Starlette,
    database_url: str,
    tmp_path: Path,
    read_key: str,
    webhook_key: str,
    campaign: Campaign,
) -> None:
    with several(database_url, tmp_path, 2, CAMPAIGN_POOL_SIZE="2") as (first, second):
        await post(first.base, webhook_key, event(campaign.enrollment_id, "opened", step=1))
        async with app.state.engine.connect() as connection:
            opened = await connection.scalar(
                text("SELECT id::text FROM campaign_events WHERE instance_id = :i"),
                {"i": campaign.instance_id},
            )
        async with connect(second.base, read_key) as socket:
            # After the first event: whatever commits from then on, replayed or live.
            await socket.subscribe(ACTIVITY, id=campaign.instance_id, after=opened)
            await socket.subscribe(STATUS, id=campaign.instance_id)
            await socket.next_data()  # the status subscription is registered
            await post(first.base, webhook_key, event(campaign.enrollment_id, "replied", step=1))
            # Until both items and the counters they moved have come (the first event's NOTIFY
            # may reach the second process late, and send the instance's status once more).
            activity: list[dict[str, Any]] = []
            replied_status: list[dict[str, Any]] = []
            while len(activity) < 2 or not replied_status:
                message = await socket.next_data()
                activity += [message["instanceActivity"]] if "instanceActivity" in message else []
                status = message.get("instanceStatus")
                replied_status += [status] if status and status["metrics"]["replied"] else []
    # The reply, and the enrollment's status change it made, in the same transaction.
    by_kind = {item["kind"]: item for item in activity}
    event_item, status_item = by_kind["EVENT"], by_kind["ENROLLMENT_STATUS"]
    assert event_item["event"]["eventType"] == "REPLIED"
    assert event_item["metrics"]["replied"] == 1
    assert status_item["kind"] == "ENROLLMENT_STATUS"
    assert status_item["enrollmentStatus"] == "REPLIED"
    assert replied_status[0]["metrics"]["replied"] == 1


async def test_a_keys_open_subscriptions_are_limited_for_the_whole_service(
    app: Starlette, database_url: str, tmp_path: Path, read_key: str, campaign: Campaign
) -> None:
    async def held() -> int:
        async with app.state.engine.connect() as connection:
            return int(
                await connection.scalar(text("SELECT coalesce(sum(held), 0) FROM live_key_holds"))
            )

    limit = {"CAMPAIGN_LIVE_SUBSCRIPTIONS_PER_KEY": "2"}
    with several(database_url, tmp_path, 2, CAMPAIGN_POOL_SIZE="2", **limit) as (first, second):
        async with connect(first.base, read_key) as one, connect(second.base, read_key) as other:
            for socket in (one, other):
                await socket.subscribe(STATUS, id=campaign.instance_id)
                await socket.next_data()
            for socket in (one, other):
                refused = await socket.errors_of(
                    await socket.subscribe(STATUS, id=campaign.instance_id)
                )
                assert refused[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
            assert await held() == 2
        # Closed on both processes: the places are free again, whichever process asks.
        for _ in range(int(WAIT_S / 0.05)):
            if await held() == 0:
                break
            await asyncio.sleep(0.05)
        assert await held() == 0
        async with connect(first.base, read_key) as again:
            for _ in range(2):
                await again.subscribe(STATUS, id=campaign.instance_id)
                await again.next_data()
