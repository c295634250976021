"""What erasure tests share: the person erased, the GraphQL documents, a search of every text
and JSON column of every table, a dump of the whole database, and the analytics as a client
reads them."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql_client import gql
from tests.lifecycle.helpers import mutate
from tests.webhooks.helpers import load

CONTACT_ID = "hubspot-zq-4711"
EMAIL = "Zelda.Quimby+Erase@Example.ORG"
PROFILE = "https://www.LinkedIn.com/in/Zelda-Quimby-77/?trk=crm"
FIRST_NAME = "Zeldaria"
LAST_NAME = "Quimbywright"
METADATA = {
    "email": EMAIL,
    "linkedin_url": PROFILE,
    "first_name": FIRST_NAME,
    "last_name": LAST_NAME,
    "company": "Analytical Engines",
}
NEEDLES = (
    EMAIL.lower(),
    "zelda-quimby-77",  # the profile, however written
    FIRST_NAME.lower(),
    LAST_NAME.lower(),
    CONTACT_ID,
)
"""What must be found nowhere after the erasure (compared case-insensitively)."""

ERASE = """
mutation Erase($contactId: String!) {
  eraseContact(contactId: $contactId) {
    alreadyErased
    erasure { contactHash actor erasedAt enrollments events dispatches addresses }
    errors { field code message }
  }
}
"""
ANALYTICS = """
query Analytics($id: ID!) {
  instance(id: $id) {
    metrics { enrolled sent delivered opened clicked replied bounced unsubscribed }
    performance {
      metrics { enrolled sent delivered opened clicked replied bounced unsubscribed }
      rates { deliveryRate openRate clickRate replyRate bounceRate unsubscribeRate }
      byStep { channel stepNumber metrics { sent delivered opened clicked replied bounced
                                            unsubscribed } }
      byChannel { channel metrics { sent delivered opened clicked replied bounced
                                    unsubscribed } }
    }
  }
}
"""


async def erase(client: httpx.AsyncClient, key: str, contact_id: str) -> dict[str, Any]:
    return await mutate(client, key, ERASE, "eraseContact", {"contactId": contact_id})


async def searchable_columns(engine: AsyncEngine) -> list[tuple[str, str]]:
    """Every (table, column) of the public schema that can hold text: text, varchar, char,
    json, jsonb and arrays, read from information_schema, so tables added later are searched
    too."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                " JOIN information_schema.tables t"
                "   ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
                " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                "   AND (c.data_type IN ('text', 'character varying', 'character', 'json',"
                "                        'jsonb', 'ARRAY')"
                "        OR c.udt_name IN ('text', 'varchar', 'json', 'jsonb'))"
                " ORDER BY 1, 2"
            )
        )
        return [(row[0], row[1]) for row in rows]


async def traces(engine: AsyncEngine, needles: tuple[str, ...] = NEEDLES) -> list[str]:
    """Each (table.column, needle) where a needle occurs, case-insensitively, in any row."""
    columns = await searchable_columns(engine)
    assert ("enrollments", "metadata") in columns
    assert ("campaign_events", "metadata") in columns
    found = []
    async with engine.connect() as connection:
        for table, column in columns:
            for needle in needles:
                hit = await connection.scalar(
                    text(
                        f'SELECT EXISTS (SELECT 1 FROM "{table}"'
                        f' WHERE strpos(lower(CAST("{column}" AS text)), :needle) > 0)'
                    ),
                    {"needle": needle.lower()},
                )
                if hit:
                    found.append(f"{table}.{column}: {needle}")
    return found


BOOKKEEPING = {"rate_limit_buckets"}
"""Written by every request (the shared rate limits' draws), whatever it does to the data."""


async def dump(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every data table, as text, sorted: two dumps are equal when nothing
    changed."""
    async with engine.connect() as connection:
        tables = [
            row[0]
            for row in await connection.execute(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
        ]
        result = {}
        for table in sorted(set(tables) - BOOKKEEPING):
            rows = await connection.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t'))
            result[table] = sorted(row[0] for row in rows)
        return result


async def analytics(client: httpx.AsyncClient, key: str, instance_id: str) -> dict[str, Any]:
    body = await gql(client, key, ANALYTICS, {"id": instance_id})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["instance"]
    return result


async def stored_figures(engine: AsyncEngine) -> dict[str, Any]:
    """What the counts are made of, as stored: counters, outcomes, shards, events by kind."""
    queries = {
        "counters": "SELECT id::text, total_enrolled, total_sent, total_delivered, total_opened,"
        " total_clicked, total_replied, total_bounced, total_unsubscribed"
        " FROM campaign_instances ORDER BY id",
        "outcomes": "SELECT enrollment_id::text, channel::text, step_number, counter"
        " FROM event_outcomes ORDER BY 1, 2, 3, 4",
        "shards": "SELECT CAST(s AS text) FROM instance_counter_shards s ORDER BY 1",
        "events": "SELECT enrollment_id::text, instance_id::text, event_type::text,"
        " channel::text, provider::text, provider_event_id, step_number, occurred_at"
        " FROM campaign_events ORDER BY id",
    }
    async with engine.connect() as connection:
        return {
            name: [tuple(row) for row in await connection.execute(text(sql))]
            for name, sql in queries.items()
        }


def lemlist(kind: str, enrollment_id: str, activity: str, **fields: Any) -> dict[str, Any]:
    """A lemlist activity of the fixtures, about the erased person, for ``enrollment_id``."""
    payload = copy.deepcopy(load("lemlist", kind))
    payload.update(
        {
            "_id": activity,
            "enrollmentId": enrollment_id,
            "leadEmail": EMAIL,
            "leadFirstName": FIRST_NAME,
            "leadLastName": LAST_NAME,
        }
        | fields
    )
    return payload


def postmark(kind: str, enrollment_id: str, **fields: Any) -> dict[str, Any]:
    payload = copy.deepcopy(load("postmark", kind))
    payload["Metadata"]["enrollment_id"] = enrollment_id
    for field in ("Email", "Recipient"):
        if field in payload:
            payload[field] = EMAIL
    payload.update(fields)
    return payload
