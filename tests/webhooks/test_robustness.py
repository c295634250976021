"""Hostile or unusual payloads get a clear answer (200 or 400, never a server error), and one
bad request never fails the good requests that arrive with it."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.limits import JSON_MAX_BYTES
from tests.webhooks.helpers import (
    Campaign,
    Step,
    count_rows,
    event,
    load,
    make_campaign,
    ok_events,
    post_events,
    post_lemlist,
    post_phantombuster,
    post_postmark,
    stored_events,
)

NUL_REF = "5d2b1c7e-3f0a-4c1e\x00-9d2b-7a8e6f5c4b3a"


@pytest.fixture
async def campaign(app: Starlette, engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, (Step("email", 1, 0), Step("email", 2, 24)))


async def answered(request: Any) -> httpx.Response:
    """The response; an exception out of the app (a 500 in production) fails the test."""
    try:
        response: httpx.Response = await request
    except Exception as exc:  # the ASGI transport re-raises what the app did not handle
        pytest.fail(f"server error instead of an answer: {type(exc).__name__}: {exc}"[:400])
    return response


async def clear_answer(engine: AsyncEngine, response: httpx.Response) -> None:
    """Stored as an orphan (200) or refused (400, nothing stored): either is a clear answer."""
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert set(response.json()) == {"error", "message"}
        assert await count_rows(engine, "campaign_events") == 0
    else:
        assert response.json()["orphaned"] == 1
        (row,) = await stored_events(engine)
        assert row["enrollment_id"] is None


def nul_payload(endpoint: str) -> dict[str, Any]:
    if endpoint == "events":
        return {"enrollment_id": NUL_REF, "event_type": "opened", "provider_event_id": "nul-1"}
    if endpoint == "lemlist":
        return load("lemlist", "emailsOpened") | {"enrollmentId": NUL_REF}
    if endpoint == "postmark":
        payload = load("postmark", "Open")
        payload["Metadata"]["enrollment_id"] = NUL_REF
        return payload
    payload = load("phantombuster", "message_sender_object")
    payload["resultObject"]["enrollmentId"] = NUL_REF
    return payload


async def post(client: httpx.AsyncClient, key: str, endpoint: str, payload: Any) -> Any:
    if endpoint == "events":
        return await post_events(client, key, payload)
    poster = {"lemlist": post_lemlist, "postmark": post_postmark}.get(endpoint, post_phantombuster)
    return await poster(client, payload)


@pytest.mark.parametrize("endpoint", ["events", "lemlist", "postmark", "phantombuster"])
async def test_a_nul_character_in_the_enrollment_reference_gets_a_clear_answer(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    campaign: Campaign,
    endpoint: str,
) -> None:
    """JSON allows "\\u0000" in a string; PostgreSQL's jsonb and text do not."""
    response = await answered(post(client, webhook_key, endpoint, nul_payload(endpoint)))
    await clear_answer(engine, response)


async def test_an_orphan_with_metadata_at_the_size_limit_gets_a_clear_answer(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, campaign: Campaign
) -> None:
    metadata = {"note": ""}
    metadata["note"] = "v" * (JSON_MAX_BYTES - len(json.dumps(metadata)))
    assert len(json.dumps(metadata).encode()) == JSON_MAX_BYTES  # allowed: at most 10 KB
    # Accepted for a known enrollment...
    await ok_events(
        client, webhook_key, [event(campaign.enrollment_id, "opened", 1, metadata=metadata)]
    )
    # ...and for an unknown one, whose reference the service adds to the metadata.
    orphan = event("0d6c5f4e-3b2a-4c1d-8e9f-a0b1c2d3e4f5", "opened", 1, metadata=metadata)
    response = await answered(post_events(client, webhook_key, [orphan]))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["orphaned"] == 1
    assert await count_rows(engine, "campaign_events") == 1 + (response.status_code == 200)


async def test_a_bad_request_does_not_fail_the_good_ones_arriving_with_it(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, campaign: Campaign
) -> None:
    """webhooks.md: a request that fails stores nothing *of itself*. Concurrent requests may
    share a transaction (group commit), but an innocent request must still be stored and get
    its 200, or its provider retries it for nothing."""
    bad = nul_payload("events")
    good_events = []
    for _ in range(5):
        round_events = [event(campaign.enrollment_id, "opened", 1) for _ in range(8)]
        good_events += round_events
        requests = [post_events(client, webhook_key, [e]) for e in round_events]
        requests.insert(4, post_events(client, webhook_key, copy.deepcopy(bad)))
        results = await asyncio.gather(*requests, return_exceptions=True)
        innocent = results[:4] + results[5:]
        outcomes = [getattr(r, "status_code", type(r).__name__) for r in innocent]
        assert outcomes == [200] * 8, outcomes
    stored = {e["provider_event_id"] for e in await stored_events(engine)}
    assert {e["provider_event_id"] for e in good_events} <= stored
