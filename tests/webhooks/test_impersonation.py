"""Provider impersonation and dedupe poisoning (issue 24, item 5): a ``webhooks`` key posted
a lemlist activity id as a bounce to the generic endpoint, and lemlist's real delivery of that
id (a reply) became a duplicate: the reply was lost and the contact marked bounced.

Two defences, each tested on its own: the generic endpoint refuses a provider that has an
adapter, and whatever is reported through the API (the generic endpoint, recordEvent) is
deduplicated apart from what the provider itself reports."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.webhooks.helpers import (
    Campaign,
    Step,
    count_rows,
    enrollment_state,
    load,
    make_campaign,
    post_events,
    post_lemlist,
    stored_events,
    with_enrollment,
)
from tests.webhooks.test_http import assert_error

STEPS = (Step("email", 1, 0), Step("email", 2, 48))


@pytest.fixture
async def campaign(app: Starlette, engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, STEPS, template_type="email")


async def deliver_the_real_reply(client: httpx.AsyncClient, enrollment_id: str) -> None:
    reply = with_enrollment(load("lemlist", "emailsReplied"), "lemlist", enrollment_id)
    response = await post_lemlist(client, reply | {"_id": "act-123"})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "orphaned": 0, "ignored": 0}


@pytest.mark.parametrize("target", ["the contact", "an unknown enrollment"])
async def test_the_attack_replayed_the_reply_is_kept_and_the_contact_not_bounced(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    campaign: Campaign,
    target: str,
) -> None:
    enrollment_id = campaign.enrollment_id
    attack = {
        "enrollment_id": enrollment_id
        if target == "the contact"
        else "00000000-0000-4000-8000-000000000000",
        "provider": "lemlist",
        "provider_event_id": "act-123",
        "event_type": "bounced",
    }
    refused = assert_error(await post_events(client, webhook_key, attack), 400)
    assert refused["error"] == "INVALID_PAYLOAD"
    assert "field 'provider'" in refused["message"]
    assert "/webhooks/lemlist" in refused["message"]
    assert await count_rows(engine, "campaign_events") == 0

    await deliver_the_real_reply(client, enrollment_id)
    assert (await enrollment_state(engine, enrollment_id))["status"] == "replied"
    (stored,) = await stored_events(engine)
    assert (stored["provider"], stored["provider_event_id"], stored["event_type"]) == (
        "lemlist",
        "act-123",
        "replied",
    )


@pytest.mark.parametrize("provider", ["postmark", "phantombuster", "LEMLIST"])
async def test_no_provider_with_an_adapter_may_be_claimed_in_a_batch_either(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    campaign: Campaign,
    provider: str,
) -> None:
    honest = {"enrollment_id": campaign.enrollment_id, "event_type": "opened"}
    claimed = honest | {"provider": provider, "provider_event_id": "x-1"}
    response = await post_events(client, webhook_key, [honest, claimed])
    assert "events[1]: field 'provider'" in assert_error(response, 400)["message"]
    assert await count_rows(engine, "campaign_events") == 0


async def test_api_is_still_the_generic_endpoints_own_provider(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, campaign: Campaign
) -> None:
    body = {"enrollment_id": campaign.enrollment_id, "event_type": "opened", "provider": "api"}
    response = await post_events(client, webhook_key, body | {"provider_event_id": "tool-1"})
    assert response.status_code == 200, response.text
    again = await post_events(client, webhook_key, body | {"provider_event_id": "tool-1"})
    assert again.json()["duplicates"] == 1


RECORD_EVENT = """
mutation($input: RecordEventInput!) {
  recordEvent(input: $input) { duplicate event { id } errors { field code message } }
}
"""


async def test_record_event_claiming_lemlist_does_not_shadow_lemlists_delivery(
    client: httpx.AsyncClient, engine: AsyncEngine, write_key: str, campaign: Campaign
) -> None:
    """recordEvent may still label an event with a provider, but what a write key reports is
    deduplicated apart from the provider's own reports."""
    variables = {
        "input": {
            "enrollmentId": campaign.enrollment_id,
            "eventType": "OPENED",
            "provider": "LEMLIST",
            "providerEventId": "act-123",
        }
    }
    first = (await gql(client, write_key, RECORD_EVENT, variables))["data"]["recordEvent"]
    assert (first["duplicate"], first["errors"]) == (False, [])
    await deliver_the_real_reply(client, campaign.enrollment_id)
    assert (await enrollment_state(engine, campaign.enrollment_id))["status"] == "replied"
    # Its own repeat is still a duplicate of it.
    again = (await gql(client, write_key, RECORD_EVENT, variables))["data"]["recordEvent"]
    assert again["duplicate"] is True
    assert again["event"] == first["event"]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type::text, via_api FROM campaign_events"
                    " WHERE provider = 'lemlist' AND provider_event_id = 'act-123'"
                    " ORDER BY via_api"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("replied", False), ("opened", True)]
