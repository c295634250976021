"""instanceActivity and instanceStatus over graphql-transport-ws, against a real server: a
webhook posted over HTTP reaches the subscriber; ``after`` replays exactly."""

from __future__ import annotations

import httpx

from tests.live.client import ACTIVITY, STATUS, connect
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
    base: str, read_key: str, webhook_key: str, campaign: Campaign
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
