"""GraphiQL runs a subscription: in a real headless Chromium under the page's CSP, open
instanceActivity, post a webhook over HTTP, and see the event appear in the result pane."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import expect
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from tests.browser.test_graphiql import Watched, editor_text, graphiql, type_headers
from tests.webhooks.helpers import Step, event, make_campaign

pytestmark = pytest.mark.browser
WAIT_S = 15.0

__all__ = ["graphiql"]  # the fixture, shared with the page's other tests


async def test_a_subscription_in_graphiql_shows_a_webhook_as_it_arrives(
    graphiql: tuple[str, Watched], seeded: Starlette, read_key: str
) -> None:
    base_url, watched = graphiql
    page = watched.page
    campaign = await make_campaign(seeded.state.engine, [Step("email", 1, 0)])
    async with seeded.state.sessionmaker.begin() as session:
        webhook_key = await create_api_key(session, "browser-webhooks", frozenset({Scope.WEBHOOKS}))
    await seeded.state.notifications.listening.wait()

    # The document comes in the address (as a shared link would bring it): GraphiQL has it
    # parsed, and so knows it for a subscription, before the run.
    document = (
        f'subscription Live {{ instanceActivity(instanceId: "{campaign.instance_id}")'
        " { cursor kind event { id eventType } metrics { opened } } }"
    )
    await page.goto(f"{base_url}/graphql?q={quote(document)}")
    await type_headers(page, {"Authorization": f"Bearer {read_key}"})
    # The schema follows the key; GraphiQL sends subscriptions over its WebSocket.
    await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click()
    docs = page.locator(".graphiql-doc-explorer")
    await expect(docs.get_by_text("Subscription", exact=True)).to_be_visible(timeout=15_000)
    await page.locator(".graphiql-execute-button").click()
    hub = seeded.state.live_hub
    for _ in range(int(WAIT_S / 0.02)):  # a bound against a hang: the browser connects
        if hub.subscribers_of(campaign.instance_id) == 1:
            break
        await asyncio.sleep(0.02)
    assert hub.subscribers_of(campaign.instance_id) == 1

    async with httpx.AsyncClient(base_url=base_url) as http:
        posted = await http.post(
            "/webhooks/events",
            json={"events": [event(campaign.enrollment_id, "opened", step=1)]},
            headers={"authorization": f"Bearer {webhook_key}"},
        )
    assert posted.status_code == 200, posted.text

    result = page.locator(".graphiql-response")
    await expect(result).to_contain_text("OPENED", timeout=15_000)
    answer = json.loads(await editor_text(page, ".graphiql-response"))
    assert answer["data"]["instanceActivity"]["kind"] == "EVENT"
    assert answer["data"]["instanceActivity"]["metrics"] == {"opened": 1}
    await watched.assert_clean()
