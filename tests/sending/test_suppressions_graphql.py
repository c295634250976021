"""The suppression list through GraphQL (admin scope): addSuppression normalizes, is
idempotent, stops every running enrollment of the address in every instance and is audited;
removeSuppression is audited and lets the address be enrolled again; the list pages and
filters; keys without the admin scope are refused and write nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services import enrollment
from testkit.campaigns import build_campaign, contact
from tests.graphql_client import gql
from tests.lifecycle.helpers import ENROLL_CONTACT, mutate
from tests.sending.conftest import rows, scalar

ADD = """
mutation Add($input: AddSuppressionInput!) {
  addSuppression(input: $input) {
    suppression { id channel address reason createdBy createdAt }
    errors { field code message }
  }
}
"""
REMOVE = """
mutation Remove($address: String!, $channel: Channel!) {
  removeSuppression(address: $address, channel: $channel) {
    removed errors { field code message }
  }
}
"""
LIST = """
query List($first: Int, $after: String, $channel: Channel) {
  suppressions(first: $first, after: $after, channel: $channel) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id channel address reason createdBy }
  }
}
"""
RETRY = "mutation($id: ID!) { retryDispatch(id: $id) { errors { code } } }"


async def add(client: httpx.AsyncClient, key: str, address: str, **more: str) -> dict[str, Any]:
    return await mutate(client, key, ADD, "addSuppression", {"input": {"address": address} | more})


async def remove(
    client: httpx.AsyncClient, key: str, address: str, channel: str = "EMAIL"
) -> dict[str, Any]:
    variables = {"address": address, "channel": channel}
    return await mutate(client, key, REMOVE, "removeSuppression", variables)


async def written(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    """Every suppression and every audit row."""
    return (
        await rows(engine, "SELECT channel::text, address, reason::text FROM suppressions"),
        await rows(
            engine,
            "SELECT channel::text, address, action, reason::text, actor"
            " FROM suppression_changes ORDER BY created_at, id",
        ),
    )


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(sql), params)


async def statuses(engine: AsyncEngine) -> dict[tuple[str, str], tuple[str, bool]]:
    """(instance, contact) -> (status, whether a next action is scheduled)."""
    found = await rows(
        engine,
        "SELECT instance_id::text, contact_id, status::text, next_action_at IS NOT NULL"
        " FROM enrollments",
    )
    return {(i, c): (s, n) for i, c, s, n in found}


# --- scopes -------------------------------------------------------------------------------------


async def test_only_an_admin_key_lists_adds_or_removes_suppressions(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    read_key: str,
    write_key: str,
    admin_key: str,
) -> None:
    operations = [
        (LIST, {}, "suppressions"),
        (ADD, {"input": {"address": "ada@example.com"}}, "addSuppression"),
        (REMOVE, {"address": "ada@example.com", "channel": "EMAIL"}, "removeSuppression"),
    ]
    for key in (read_key, write_key):
        for document, variables, field in operations:
            body = await gql(client, key, document, variables)
            assert body["data"] is None, body
            [error] = body["errors"]
            assert (error["extensions"]["code"], error["path"]) == ("FORBIDDEN", [field])
    assert await written(engine) == ([], [])
    for document, variables, field in operations:
        body = await gql(client, admin_key, document, variables)
        assert "errors" not in body, body
        assert body["data"][field] is not None
    # retryDispatch needs write, not admin: a write key gets past the scope check.
    body = await gql(client, write_key, RETRY, {"id": str(uuid.uuid4())})
    assert body["data"]["retryDispatch"]["errors"] == [{"code": "NOT_FOUND"}], body


# --- adding -------------------------------------------------------------------------------------


async def test_add_suppression_normalizes_is_idempotent_and_stops_the_address_on_its_channel(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
) -> None:
    email = await build_campaign(app_sessionmaker, 3, template_type="email")
    multi = await build_campaign(app_sessionmaker, 3)
    draft = await build_campaign(app_sessionmaker, 2, start=False)
    contact_of = dict(await rows(engine, "SELECT id::text, contact_id FROM enrollments"))
    paused = next(i for i in email.enrollment_ids if contact_of[i] == "crm-0")
    async with app_sessionmaker.begin() as session:
        await enrollment.change_enrollment(session, paused, "pause")
    # A touch of crm-0's waiting for a retry in the multi-channel instance.
    target = next(i for i in multi.enrollment_ids if contact_of[i] == "crm-0")
    await execute(
        engine,
        "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number, provider,"
        " status, attempts, due_at, next_attempt_at, last_error)"
        " VALUES (CAST(:e AS uuid), CAST(:i AS uuid), 'email', 1, 'postmark', 'queued', 1,"
        " now(), now() + interval '1 hour', 'HTTP 500')",
        e=target,
        i=multi.instance_id,
    )
    before = await statuses(engine)

    first = await add(client, admin_key, "  Person0@Example.COM ")
    assert first["errors"] == [], first
    suppression = first["suppression"]
    assert (suppression["channel"], suppression["address"]) == ("EMAIL", "person0@example.com")
    assert (suppression["reason"], suppression["createdBy"]) == ("MANUAL", "test-admin")

    after = await statuses(engine)
    stopped = {k for k in before if after[k] != before[k]}
    assert {contact_id for _, contact_id in stopped} == {"crm-0"}
    instances = {email.instance_id, multi.instance_id, draft.instance_id}
    assert {instance for instance, _ in stopped} == instances  # enrolled, active and paused
    assert {after[k] for k in stopped} == {("unsubscribed", False)}
    queued = await scalar(
        engine,
        "SELECT status::text FROM dispatches WHERE enrollment_id = CAST(:e AS uuid)",
        e=target,
    )
    assert queued == "cancelled"
    audit = [("email", "person0@example.com", "added", "manual", "test-admin")]
    assert await written(engine) == ([("email", "person0@example.com", "manual")], audit)

    for variant in ("person0@example.com", "PERSON0@EXAMPLE.COM"):
        again = await add(client, admin_key, variant, reason="BOUNCED")
        assert again["suppression"]["id"] == suppression["id"]
        assert again["suppression"]["reason"] == "MANUAL"  # the first reason stays
    assert await written(engine) == ([("email", "person0@example.com", "manual")], audit)

    # A bounce stops as bounced; a LinkedIn profile written any way is one address.
    assert (await add(client, admin_key, "person1@example.com", reason="BOUNCED"))["errors"] == []
    profile = await add(
        client,
        admin_key,
        "https://www.LinkedIn.com/in/Person-2/?trk=public#top",
        channel="LINKEDIN",
    )
    assert profile["suppression"]["address"] == "linkedin.com/in/person-2"
    for variant in ("http://linkedin.com/in/person-2", "www.linkedin.com/in/person-2/"):
        same = await add(client, admin_key, variant, channel="LINKEDIN")
        assert same["suppression"]["id"] == profile["suppression"]["id"]
    final = await statuses(engine)
    for key, state in final.items():
        expected = {"crm-0": "unsubscribed", "crm-1": "bounced"}
        # A LinkedIn suppression stops the contact where LinkedIn is used, not in the
        # e-mail-only instance, which never reaches the profile.
        if key[0] != email.instance_id:
            expected["crm-2"] = "unsubscribed"
        assert state[0] == expected.get(key[1], before[key][0]), key
    assert len((await written(engine))[1]) == 3  # one audit row per suppression added


@pytest.mark.parametrize(
    ("channel", "address"),
    [("EMAIL", "not-an-address"), ("EMAIL", "   "), ("LINKEDIN", "https://example.com/in/ada")],
)
async def test_an_invalid_address_is_refused_and_nothing_is_written(
    engine: AsyncEngine, client: httpx.AsyncClient, admin_key: str, channel: str, address: str
) -> None:
    result = await add(client, admin_key, address, channel=channel)
    assert result["suppression"] is None
    [error] = result["errors"]
    assert (error["code"], error["field"]) == ("INVALID", ["input", "address"])
    removal = await remove(client, admin_key, address, channel)
    assert removal["removed"] is False
    assert [(e["code"], e["field"]) for e in removal["errors"]] == [("INVALID", ["address"])]
    assert await written(engine) == ([], [])


# --- removing -----------------------------------------------------------------------------------


async def test_removing_is_logged_and_lets_the_address_be_enrolled_again(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    admin_key: str,
    write_key: str,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 1, template_type="email")
    assert (await add(client, admin_key, "person0@example.com"))["errors"] == []
    newcomer = contact(0)
    data = {"contactId": "crm-again", "metadata": newcomer.metadata}
    variables = {"instanceId": campaign.instance_id, "input": data}

    refused = await mutate(client, write_key, ENROLL_CONTACT, "enrollContact", variables)
    assert [e["code"] for e in refused["errors"]] == ["SUPPRESSED"]

    removed = await remove(client, admin_key, " Person0@EXAMPLE.com")
    assert removed == {"removed": True, "errors": []}
    again = await remove(client, admin_key, "person0@example.com")
    assert again == {"removed": False, "errors": []}
    assert await written(engine) == (
        [],
        [
            ("email", "person0@example.com", "added", "manual", "test-admin"),
            ("email", "person0@example.com", "removed", "manual", "test-admin"),
        ],
    )
    enrolled = await mutate(client, write_key, ENROLL_CONTACT, "enrollContact", variables)
    assert enrolled["errors"] == [], enrolled
    assert enrolled["enrollment"]["status"] == "ACTIVE"
    # The enrollment the suppression stopped stays stopped.
    state = await statuses(engine)
    assert state[(campaign.instance_id, "crm-0")] == ("unsubscribed", False)


# --- the list -----------------------------------------------------------------------------------


async def test_the_list_pages_newest_first_and_filters_by_channel(
    engine: AsyncEngine, client: httpx.AsyncClient, admin_key: str
) -> None:
    for n in range(5):
        assert (await add(client, admin_key, f"list{n}@example.com"))["errors"] == []
    for n in range(3):
        profile = f"linkedin.com/in/list-{n}"
        assert (await add(client, admin_key, profile, channel="LINKEDIN"))["errors"] == []

    for channel in (None, "EMAIL", "LINKEDIN"):
        where = "" if channel is None else f" WHERE channel = '{channel.lower()}'"
        expected = [
            r[0]
            for r in await rows(
                engine,
                f"SELECT id::text FROM suppressions{where} ORDER BY created_at DESC, id DESC",
            )
        ]
        seen: list[str] = []
        after = None
        while True:
            body = await gql(
                client, admin_key, LIST, {"first": 2, "after": after, "channel": channel}
            )
            assert "errors" not in body, body
            page = body["data"]["suppressions"]
            assert page["totalCount"] == len(expected)
            assert len(page["nodes"]) <= 2
            assert all(channel in (None, n["channel"]) for n in page["nodes"])
            seen.extend(n["id"] for n in page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == expected
    assert len(expected) == 3  # the last pass: LINKEDIN only
