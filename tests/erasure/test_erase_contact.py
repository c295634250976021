"""eraseContact through GraphQL: a contact enrolled in two instances, with events the providers
sent (their metadata quoting the address and the name), dispatches, suppressions and an
orphan, is erased; then no text or JSON column of any table holds the address, the profile,
the name or the contact id, the analytics read the same, the address cannot be enrolled
again, a second erasure changes nothing, and events arriving later keep nothing personal."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services.ingestion.orphans import relink_orphans
from testkit.campaigns import build_campaign
from tests.erasure.helpers import (
    CONTACT_ID,
    EMAIL,
    FIRST_NAME,
    LAST_NAME,
    METADATA,
    analytics,
    dump,
    erase,
    lemlist,
    postmark,
    stored_figures,
    traces,
)
from tests.graphql_client import gql
from tests.lifecycle.helpers import (
    BULK_ENROLL,
    ENROLL_CONTACT,
    assert_refused,
    enroll,
    mutate,
    suppress,
)
from tests.webhooks.helpers import event, ok_events, post_lemlist, post_postmark

NORMALIZED_EMAIL = EMAIL.lower()
NORMALIZED_PROFILE = "linkedin.com/in/zelda-quimby-77"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), params)]


async def a_contact_with_history(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
    webhook_key: str,
) -> tuple[list[str], list[str]]:
    """Two running instances with other contacts; the person enrolled in both, with what
    providers reported about it, a suppression of each address, two dispatches and an
    orphan quoting the address. Returns (instance ids, the person's enrollment ids)."""
    first = await build_campaign(app_sessionmaker, 2)
    second = await build_campaign(app_sessionmaker, 2, template_type="email")
    a = (await enroll(client, write_key, first.instance_id, CONTACT_ID, METADATA))["id"]
    b = (await enroll(client, write_key, second.instance_id, CONTACT_ID, METADATA))["id"]

    for payload in (
        lemlist("emailsSent", a, "act-zq-sent", sequenceStep=0),
        lemlist("emailsOpened", a, "act-zq-open", sequenceStep=0),
        lemlist("emailsClicked", str(uuid.uuid4()), "act-zq-orphan"),  # an orphan
    ):
        response = await post_lemlist(client, payload)
        assert response.status_code == 200, response.text
    response = await post_postmark(client, postmark("Delivery", b))
    assert response.status_code == 200, response.text
    await ok_events(
        client,
        webhook_key,
        [
            event(b, "sent", 1, metadata={"to": EMAIL, "name": f"{FIRST_NAME} {LAST_NAME}"}),
            event(b, "opened", 1, metadata={"recipient": EMAIL.upper()}),
        ],
    )
    # The unsubscribe suppresses the address (and stops b too); the profile is suppressed by
    # an operator, which the suppression log keeps.
    response = await post_lemlist(client, lemlist("emailsUnsubscribed", a, "act-zq-unsub"))
    assert response.status_code == 200, response.text
    await suppress(client, admin_key, PROFILE_AS_TYPED, channel="LINKEDIN")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number,"
                " provider, status, attempts, due_at, next_attempt_at, last_error,"
                " last_error_code)"
                " VALUES (:b, :second, 'email', 2, 'postmark', 'failed', 1, now(), NULL,"
                "         :refused, 'PROVIDER_406'),"
                "        (:a, :first, 'email', 2, 'postmark', 'queued', 1, now(),"
                "         now() + interval '1 hour', :later, 'HTTP_503')"
            ),
            {
                "a": a,
                "b": b,
                "first": first.instance_id,
                "second": second.instance_id,
                "refused": f"Invalid 'To' address: '{NORMALIZED_EMAIL}'",
                "later": f"503 while sending to {FIRST_NAME} <{EMAIL}>",
            },
        )
    return [first.instance_id, second.instance_id], [a, b]


PROFILE_AS_TYPED = "https://www.linkedin.com/in/zelda-quimby-77/"


async def test_erasing_leaves_no_trace_keeps_the_figures_and_blocks_the_address(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    read_key: str,
    write_key: str,
    admin_key: str,
    webhook_key: str,
) -> None:
    instances, enrollments = await a_contact_with_history(
        engine, app_sessionmaker, client, write_key, admin_key, webhook_key
    )
    found = await traces(engine)
    for needle in (NORMALIZED_EMAIL, "zelda-quimby-77", "zeldaria", "quimbywright", CONTACT_ID):
        assert any(hit.endswith(needle) for hit in found), (needle, found)
    others = await traces(engine, ("person0@example.com", "ada0"))
    statuses_before = await rows(
        engine, "SELECT id::text, status::text FROM enrollments ORDER BY id"
    )
    figures_before = await stored_figures(engine)
    analytics_before = [await analytics(client, read_key, i) for i in instances]
    personal_events = (
        await rows(
            engine,
            "SELECT count(*) FROM campaign_events"
            " WHERE (enrollment_id = ANY(CAST(:ids AS uuid[])) AND metadata <> '{}')"
            " OR (enrollment_id IS NULL AND strpos(lower(metadata::text), :email) > 0)",
            ids=enrollments,
            email=NORMALIZED_EMAIL,
        )
    )[0][0]

    result = await erase(client, admin_key, f"  {CONTACT_ID} ")
    assert result["errors"] == [], result
    assert result["alreadyErased"] is False
    erasure = result["erasure"]
    assert erasure["contactHash"] == sha256(CONTACT_ID)
    assert erasure["actor"] == "test-admin"
    assert (erasure["enrollments"], erasure["addresses"], erasure["dispatches"]) == (2, 2, 2)
    assert erasure["events"] == personal_events

    # No trace, in any text or JSON column of any table; the other contacts keep theirs.
    assert await traces(engine) == []
    assert await traces(engine, ("person0@example.com", "ada0")) == others
    # Counts and analytics as they were; statuses too (both had stopped: unsubscribed).
    assert await stored_figures(engine) == figures_before
    assert [await analytics(client, read_key, i) for i in instances] == analytics_before
    assert (
        await rows(engine, "SELECT id::text, status::text FROM enrollments ORDER BY id")
        == statuses_before
    )
    erased = await rows(
        engine,
        "SELECT contact_id, metadata::text, erased_at IS NOT NULL FROM enrollments"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=enrollments,
    )
    assert erased == [(f"erased:{sha256(CONTACT_ID)}", "{}", True)] * 2
    assert await rows(
        engine, "SELECT channel::text, address_sha256 FROM hashed_suppressions ORDER BY 1"
    ) == [("email", sha256(NORMALIZED_EMAIL)), ("linkedin", sha256(NORMALIZED_PROFILE))]
    assert await rows(engine, "SELECT address FROM suppression_changes") == [
        (f"sha256:{sha256(NORMALIZED_PROFILE)}",)
    ]
    assert await rows(
        engine, "SELECT status::text, last_error, last_error_code FROM dispatches ORDER BY 3"
    ) == [("cancelled", "[erased]", "HTTP_503"), ("failed", "[erased]", "PROVIDER_406")]
    assert await rows(
        engine,
        "SELECT contact_sha256, actor, enrollments, events, dispatches, addresses"
        " FROM contact_erasures",
    ) == [(sha256(CONTACT_ID), "test-admin", 2, personal_events, 2, 2)]

    # The address cannot be enrolled again, however written and under whatever contact id;
    # refusing writes nothing.
    before_refusals = await dump(engine)
    again = await mutate(
        client,
        write_key,
        ENROLL_CONTACT,
        "enrollContact",
        {"instanceId": instances[1], "input": {"contactId": CONTACT_ID, "metadata": METADATA}},
    )
    assert_refused(again, "enrollment", "SUPPRESSED", ["input", "metadata", "email"])
    other = METADATA | {"email": f"  {EMAIL.upper()}"}
    bulk = await mutate(
        client,
        write_key,
        BULK_ENROLL,
        "bulkEnroll",
        {"instanceId": instances[1], "contacts": [{"contactId": "crm-new", "metadata": other}]},
    )
    assert bulk["errors"] == [], bulk
    assert bulk["enrolledCount"] == 0
    assert [s["reason"] for s in bulk["skipped"]] == ["SUPPRESSED"]
    assert await dump(engine) == before_refusals

    # Erasing again changes nothing and answers with the first erasure.
    repeated = await erase(client, admin_key, CONTACT_ID)
    assert repeated == {"alreadyErased": True, "erasure": erasure, "errors": []}
    assert await dump(engine) == before_refusals

    # What providers send later about the erased contact is counted, and keeps nothing.
    click = lemlist("emailsClicked", enrollments[0], "act-zq-late-click", sequenceStep=0)
    response = await post_lemlist(client, click)
    assert response.status_code == 200, response.text
    await ok_events(
        client,
        webhook_key,
        [event(enrollments[1], "clicked", 1, metadata={"to": EMAIL, "name": LAST_NAME})],
    )
    assert await traces(engine) == []
    after = await analytics(client, read_key, instances[0])
    assert after["metrics"]["clicked"] == analytics_before[0]["metrics"]["clicked"] + 1
    assert await rows(
        engine,
        "SELECT DISTINCT metadata::text FROM campaign_events"
        " WHERE enrollment_id = ANY(CAST(:ids AS uuid[]))",
        ids=enrollments,
    ) == [("{}",)]


async def test_a_running_enrollment_is_removed_and_its_queued_touch_cancelled(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 1, template_type="email")
    draft = await build_campaign(app_sessionmaker, 1, template_type="email", start=False)
    active = (await enroll(client, write_key, campaign.instance_id, CONTACT_ID, METADATA))["id"]
    waiting = (await enroll(client, write_key, draft.instance_id, CONTACT_ID, METADATA))["id"]
    # Another contact id with the same address, running elsewhere: the hashed suppression
    # stops it as any suppression would, but its own data stays (it is not the one erased).
    twin = (await enroll(client, write_key, draft.instance_id, "crm-twin", METADATA))["id"]
    states = "SELECT status::text, next_action_at IS NULL FROM enrollments WHERE id = :id"
    assert await rows(engine, states, id=active) == [("active", False)]

    result = await erase(client, admin_key, CONTACT_ID)
    assert result["errors"] == [], result

    assert await rows(engine, states, id=active) == [("removed", True)]
    assert await rows(engine, states, id=waiting) == [("removed", True)]
    assert await rows(engine, states, id=twin) == [("unsubscribed", True)]
    assert await rows(
        engine, "SELECT metadata ->> 'email' FROM enrollments WHERE id = :id", id=twin
    ) == [(EMAIL,)]
    assert await traces(engine, (FIRST_NAME.lower(),)) == ["enrollments.metadata: zeldaria"]


@pytest.mark.parametrize(
    ("contact_id", "code"),
    [("nobody-by-this-id", "NOT_FOUND"), ("   ", "INVALID"), ("x" * 256, "INVALID")],
)
async def test_an_unknown_or_malformed_contact_is_refused_and_nothing_is_written(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
    contact_id: str,
    code: str,
) -> None:
    await build_campaign(app_sessionmaker, 2)
    before = await dump(engine)
    result = await erase(client, admin_key, contact_id)
    assert result["alreadyErased"] is False
    assert_refused(result, "erasure", code, ["contactId"])
    assert await dump(engine) == before


async def test_only_an_admin_key_erases(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    read_key: str,
    write_key: str,
) -> None:
    await build_campaign(app_sessionmaker, 1)
    before = await dump(engine)
    for key in (read_key, write_key):
        body = await gql(
            client, key, 'mutation { eraseContact(contactId: "crm-0") { alreadyErased } }'
        )
        assert body["data"] is None, body
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("FORBIDDEN", ["eraseContact"])
    assert await dump(engine) == before


async def test_an_orphan_of_an_erased_enrollment_keeps_only_its_reference_and_attaches_bare(
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
    # What a webhook racing the enrollment's own commit leaves: an orphan naming it.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO campaign_events (event_type, channel, provider, provider_event_id,"
                " occurred_at, metadata)"
                " VALUES ('opened', 'email', 'lemlist', 'act-early', now(), CAST(:m AS jsonb))"
            ),
            {"m": f'{{"unresolved_enrollment_ref": "{enrollment_id}", "leadEmail": "{EMAIL}"}}'},
        )
    assert (await erase(client, admin_key, CONTACT_ID))["errors"] == []
    kept = "SELECT enrollment_id::text, metadata::text FROM campaign_events"
    assert await rows(engine, kept) == [
        (None, f'{{"unresolved_enrollment_ref": "{enrollment_id}"}}')
    ]

    async with app_sessionmaker() as session, session.begin():
        assert await relink_orphans(session) == 1
    assert await rows(engine, kept) == [(enrollment_id, "{}")]
    assert await traces(engine) == []
