"""instanceActivity and instanceStatus over graphql-transport-ws, against a real server: a
webhook posted over HTTP reaches the subscriber; ``after`` replays exactly."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from tests.live.client import ACTIVITY, STATUS, connect, registered
from tests.webhooks.helpers import Campaign, event


async def post(base: str, key: str, *events: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/webhooks/events",
            json={"events": list(events)},
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text


async def test_a_posted_webhook_reaches_the_subscriber(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    async with connect(base, read_key) as socket:
        await socket.subscribe(ACTIVITY, id=campaign.instance_id)
        await socket.subscribe(STATUS, id=campaign.instance_id)
        first_status = (await socket.next_data())["instanceStatus"]
        assert first_status == {
            "id": campaign.instance_id,
            "status": "ACTIVE",
            "metrics": {"opened": 0, "replied": 0},
        }
        await registered(app.state.live_hub, campaign.instance_id, 2)
        opened = event(campaign.enrollment_id, "opened", step=1)
        await post(base, webhook_key, opened)
        received = [await socket.next_data() for _ in range(2)]
    activity = next(m["instanceActivity"] for m in received if "instanceActivity" in m)
    status = next(m["instanceStatus"] for m in received if "instanceStatus" in m)
    assert activity["kind"] == "EVENT"
    assert activity["event"]["eventType"] == "OPENED"
    assert activity["enrollment"]["id"] == campaign.enrollment_id
    assert activity["metrics"]["opened"] == 1
    assert status["metrics"] == {"opened": 1, "replied": 0}


async def test_after_replays_exactly_then_goes_live(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    a, b, c = campaign.enrollment_ids
    async with connect(base, read_key) as watching:
        await watching.subscribe(ACTIVITY, id=campaign.instance_id)
        await registered(app.state.live_hub, campaign.instance_id, 1)
        await post(base, webhook_key, event(a, "opened", step=1))
        await post(base, webhook_key, event(b, "opened", step=1), event(c, "clicked", step=1))
        seen = await watching.activity(3)
        assert [item["kind"] for item in seen] == ["EVENT"] * 3

        # After an event's id: the items after it, then live, each once.
        async with connect(base, read_key) as resuming:
            await resuming.subscribe(
                ACTIVITY, id=campaign.instance_id, after=seen[0]["event"]["id"]
            )
            assert await resuming.activity(2) == seen[1:]
            await post(base, webhook_key, event(a, "clicked", step=1))
            [live] = await resuming.activity(1)
            assert live["event"]["eventType"] == "CLICKED"
            assert live["enrollment"]["id"] == a
            assert await watching.activity(1) == [live]

        # After a cursor, on another connection: the same items, in the same order.
        async with connect(base, read_key) as again:
            await again.subscribe(ACTIVITY, id=campaign.instance_id, after=seen[1]["cursor"])
            resumed = await again.activity(2)
        assert [item["cursor"] for item in resumed] == [seen[2]["cursor"], live["cursor"]]
