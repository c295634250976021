"""Who may subscribe, and how much: the API key on the upgrade request or in connection_init,
the 'read' scope, the limits per key and per connection, the document limits, and keys revoked
while their subscriptions are open."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import websockets
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.services.live.hub import KEY_REVOKED
from app.settings import Settings
from app.web.asgi import create_app
from tests.live.client import ACTIVITY, STATUS, connect, registered
from tests.live.conftest import PER_CONNECTION, PER_KEY, live_settings, make_key
from tests.live.test_subscriptions import post
from tests.live_server import serving
from tests.test_notifications import dsn_of
from tests.webhooks.helpers import Campaign, Step, event, make_campaign


async def test_a_key_in_connection_init_authenticates(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    async with connect(base, init=False) as socket:
        assert (await socket.init({"Authorization": f"Bearer {read_key}"}))["type"] == (
            "connection_ack"
        )
        await socket.subscribe(ACTIVITY, id=campaign.instance_id)
        await registered(app.state.live_hub, campaign.instance_id, 1)
        await post(base, webhook_key, event(campaign.enrollment_id, "opened", step=1))
        [item] = await socket.activity(1)
    assert item["event"]["eventType"] == "OPENED"


@pytest.mark.parametrize("payload", [{}, {"Authorization": "Bearer cak_not-a-key"}])
async def test_without_a_valid_key_connection_init_is_refused(
    base: str, payload: dict[str, str]
) -> None:
    async with connect(base, init=False) as socket:
        await socket.send({"type": "connection_init", "payload": payload})
        assert await socket.closed_with() == (4403, "Forbidden")


async def test_an_unknown_key_on_the_upgrade_request_is_refused_at_the_handshake(
    base: str,
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(base, "cak_not-a-key"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_key_without_read_scope_gets_forbidden(
    app: Starlette, base: str, campaign: Campaign
) -> None:
    writer_only = await make_key(app, "live-no-read", Scope.WEBHOOKS)
    async with connect(base, writer_only) as socket:
        errors = await socket.errors_of(await socket.subscribe(ACTIVITY, id=campaign.instance_id))
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert "'read' scope" in errors[0]["message"]


async def test_an_unknown_instance_is_a_clear_error(base: str, read_key: str) -> None:
    async with connect(base, read_key) as socket:
        unknown = await socket.subscribe(ACTIVITY, id="8e0e5f8e-8f1e-4a8e-9c3e-3c9f0b2f9d11")
        answers = [await socket.errors_of(unknown)]
        answers.append(await socket.errors_of(await socket.subscribe(ACTIVITY, id="not-an-id")))
    for errors in answers:
        assert errors[0]["message"] == "no campaign instance has this id"
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_bad_after_is_a_clear_error(base: str, read_key: str, campaign: Campaign) -> None:
    async with connect(base, read_key) as socket:
        operation = await socket.subscribe(ACTIVITY, id=campaign.instance_id, after="yesterday")
        errors = await socket.errors_of(operation)
    assert errors[0]["extensions"]["code"] == "INVALID"
    assert "'after'" in errors[0]["message"]


async def test_subscriptions_are_limited_per_connection_and_per_key(
    base: str, read_key: str, campaign: Campaign
) -> None:
    async with connect(base, read_key) as first, connect(base, read_key) as second:
        for _ in range(PER_CONNECTION):
            await first.subscribe(STATUS, id=campaign.instance_id)
            assert (await first.next_data())["instanceStatus"]["id"] == campaign.instance_id
        refused = await first.errors_of(await first.subscribe(STATUS, id=campaign.instance_id))
        assert refused[0]["message"] == "Subscription limit reached"

        for _ in range(PER_KEY - PER_CONNECTION):
            await second.subscribe(STATUS, id=campaign.instance_id)
            await second.next_data()
        errors = await second.errors_of(await second.subscribe(STATUS, id=campaign.instance_id))
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "CAMPAIGN_LIVE_SUBSCRIPTIONS_PER_KEY" in errors[0]["message"]


async def test_the_document_limits_apply_to_subscriptions(
    base: str, read_key: str, campaign: Campaign
) -> None:
    deep = "enrollment { instance { " * 7 + "id" + " } }" * 7
    document = "subscription($id: ID!) { instanceActivity(instanceId: $id) { " + deep + " } }"
    async with connect(base, read_key) as socket:
        errors = await socket.errors_of(await socket.subscribe(document, id=campaign.instance_id))
    assert "depth" in errors[0]["message"]


async def test_revoking_a_key_closes_its_open_subscriptions(
    base: str, read_key: str, campaign: Campaign, database_url: str
) -> None:
    """The ``ops`` side NOTIFYs campaign_api_keys with the key's id when a key is revoked;
    this test sends that notification itself."""
    async with connect(base, read_key) as socket:
        await socket.subscribe(STATUS, id=campaign.instance_id)
        await socket.next_data()
        admin = await asyncpg.connect(dsn_of(database_url))
        try:
            key_id = await admin.fetchval(
                "SELECT id::text FROM api_keys WHERE name = 'test-reader'"
            )
            await admin.execute("SELECT pg_notify('campaign_api_keys', $1)", key_id)
        finally:
            await admin.close()
        assert (await socket.closed_with())[0] == KEY_REVOKED


async def test_a_subscription_sent_over_http_is_told_where_to_go(
    base: str, read_key: str, campaign: Campaign
) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/graphql",
            json={"query": ACTIVITY, "variables": {"id": campaign.instance_id}},
            headers={"authorization": f"Bearer {read_key}"},
        )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_REQUEST"
    assert "WebSocket at /graphql" in error["message"]


async def test_each_subscribe_spends_the_keys_rate_limit(
    settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = create_app(live_settings(settings).model_copy(update={"rate_limit_per_minute": 2}))
    async with limited.router.lifespan_context(limited):
        key = await make_key(limited, "live-limited", Scope.READ)
        campaign = await make_campaign(limited.state.engine, [Step("email", 1, 0)])
        async with (
            serving(limited, limited.state.settings, monkeypatch) as base,
            connect(base, key) as socket,
        ):
            for _ in range(2):
                await socket.subscribe(STATUS, id=campaign.instance_id)
                await socket.next_data()
            errors = await socket.errors_of(await socket.subscribe(STATUS, id=campaign.instance_id))
    assert errors[0]["extensions"]["code"] == "RATE_LIMITED"
