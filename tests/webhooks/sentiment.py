"""Shared by the reply-sentiment tests: posting replies and lemlist's judgements, classifying
through GraphQL, and reading back what was stored."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql_client import gql
from tests.webhooks.helpers import (
    T0,
    Step,
    event,
    iso,
    load,
    ok_events,
    post_lemlist,
    scalar,
    with_enrollment,
)

STEPS = (Step("email", 1, 0), Step("email", 2, 48), Step("linkedin", 2, 24), Step("email", 3, 48))

CLASSIFY = """
mutation Classify($id: ID!, $sentiment: ReplySentiment!, $returnDate: DateTime) {
  classifyReply(eventId: $id, sentiment: $sentiment, returnDate: $returnDate) {
    event { id eventType sentiment sentimentBy sentimentAt returnDate }
    enrollment { id status nextActionAt sentiment }
    errors { field code message }
  }
}
"""
FIGURES = "metrics { replied } replySentiment { positive negative positiveRate negativeRate }"
PERFORMANCE = f"""
query Performance($id: ID!) {{
  instance(id: $id) {{
    performance {{
      metrics {{ replied }}
      replySentiment {{ positive negative positiveRate negativeRate }}
      byStep {{ channel stepNumber {FIGURES} }}
      byChannel {{ channel {FIGURES} }}
    }}
  }}
}}
"""


async def reply(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    key: str,
    enrollment_id: str,
    *,
    step: int = 1,
    at: datetime = T0,
    channel: str = "email",
) -> str:
    """Post a reply through the generic webhook; return its stored id."""
    provider_key = f"reply-{uuid.uuid4().hex}"
    body = event(enrollment_id, "replied", step, at, key=provider_key, channel=channel)
    assert (await ok_events(client, key, [body]))["accepted"] == 1
    return await event_id(engine, provider_key)


async def event_id(engine: AsyncEngine, provider_key: str) -> str:
    return str(
        await scalar(
            engine, "SELECT id FROM campaign_events WHERE provider_event_id = :k", k=provider_key
        )
    )


async def classify(
    client: httpx.AsyncClient,
    key: str,
    event: str,
    sentiment: str,
    return_date: datetime | None = None,
) -> dict[str, Any]:
    variables = {"id": event, "sentiment": sentiment}
    if return_date is not None:
        variables["returnDate"] = iso(return_date)
    body = await gql(client, key, CLASSIFY, variables)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["classifyReply"]
    return payload


async def lemlist_says(
    client: httpx.AsyncClient, kind: str, enrollment_id: str, at: datetime
) -> dict[str, int]:
    payload = with_enrollment(load("lemlist", kind), "lemlist", enrollment_id)
    payload |= {"_id": f"act_{uuid.uuid4().hex[:12]}", "createdAt": iso(at)}
    response = await post_lemlist(client, payload)
    assert response.status_code == 200, response.text
    counts: dict[str, int] = response.json()
    return counts


async def sentiment_of(engine: AsyncEngine, event: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT e.sentiment, e.sentiment_by, e.sentiment_at, e.return_date,"
                    " n.sentiment AS enrollment_sentiment, n.status::text AS status"
                    " FROM campaign_events e JOIN enrollments n ON n.id = e.enrollment_id"
                    " WHERE e.id = CAST(:id AS uuid)"
                ),
                {"id": event},
            )
        ).one()
    return dict(row._mapping)


async def db_now(engine: AsyncEngine) -> datetime:
    value: datetime = await scalar(engine, "SELECT now()")
    return value
