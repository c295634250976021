"""What the sender did, as GraphQL shows it after a real run against the fake providers:
``Enrollment.dispatches`` and ``CampaignInstance.sending`` equal what the database holds, and
``retryDispatch`` sends a failed or unknown touch again only where that is right."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.services import enrollment
from app.settings import Settings
from testkit.campaigns import contact
from testkit.fake_providers import FakeProviders, Reply
from tests.graphql_client import gql
from tests.lifecycle.helpers import COMPLETE_INSTANCE, mutate
from tests.sending.conftest import (
    LOST,
    MIXED_CONTACTS,
    REFUSED,
    RETRIED,
    Run,
    eventually,
    rows,
    running_sender,
    scalar,
    sending_figures,
)

DISPATCH_FIELDS = (
    "id channel stepNumber provider status attempts nextAttemptAt dueAt providerMessageId"
    " lastError lastErrorCode uncertain dryRun sentAt"
)
READ = f"""
query Read($id: ID!) {{
  instance(id: $id) {{
    sending {{ dueNow inFlight retrying failed unknown sentToday nextDueAt waitingOn }}
    enrollments(first: 100) {{ nodes {{ id contactId dispatches {{ {DISPATCH_FIELDS} }} }} }}
  }}
}}
"""
RETRY = f"""
mutation Retry($id: ID!) {{
  retryDispatch(id: $id) {{ dispatch {{ {DISPATCH_FIELDS} }} errors {{ field code message }} }}
}}
"""


async def read(client: httpx.AsyncClient, key: str, instance_id: str) -> dict[str, Any]:
    body = await gql(client, key, READ, {"id": instance_id})
    assert "errors" not in body, body
    instance: dict[str, Any] = body["data"]["instance"]
    return instance


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def as_graphql(row: Any) -> dict[str, Any]:
    """A dispatches row as the Dispatch type shows it."""
    return {
        "id": str(row.id),
        "channel": row.channel.upper(),
        "stepNumber": row.step_number,
        "provider": row.provider.upper(),
        "status": row.status.upper(),
        "attempts": row.attempts,
        "nextAttemptAt": row.next_attempt_at,
        "dueAt": row.due_at,
        "providerMessageId": row.provider_message_id,
        "lastError": row.last_error,
        "lastErrorCode": row.last_error_code,
        "uncertain": row.uncertain,
        "dryRun": row.dry_run,
        "sentAt": row.sent_at,
    }


def parsed(dispatch: dict[str, Any]) -> dict[str, Any]:
    times = ("nextAttemptAt", "dueAt", "sentAt")
    return {k: when(v) if k in times else v for k, v in dispatch.items()}


async def dispatch_rows(engine: AsyncEngine, enrollment_id: str) -> list[Any]:
    return await rows(
        engine,
        "SELECT id, channel::text, step_number, provider::text, status::text, attempts,"
        " next_attempt_at, due_at, provider_message_id, last_error, last_error_code,"
        " uncertain, dry_run, sent_at FROM dispatches WHERE enrollment_id = CAST(:e AS uuid)"
        " ORDER BY step_number, channel, id",
        e=enrollment_id,
    )


async def test_dispatches_and_sending_figures_are_what_the_database_holds(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    read_key: str,
    write_key: str,
    providers: FakeProviders,
    run: Run,
) -> None:
    instance_id = run.campaign.instance_id
    # A touch queued again, and two contacts enrolled since: due now, not yet claimed.
    gave_up = (await dispatch_rows(engine, run.enrollment_of[RETRIED]))[0]
    retried = await gql(client, write_key, RETRY, {"id": str(gave_up.id)})
    assert retried["data"]["retryDispatch"]["errors"] == [], retried
    async with app_sessionmaker.begin() as session:
        await enrollment.bulk_enroll(session, instance_id, [contact(n) for n in (100, 101)])

    shown = await read(client, read_key, instance_id)

    for node in shown["enrollments"]["nodes"]:
        expected = [as_graphql(r) for r in await dispatch_rows(engine, node["id"])]
        assert [parsed(d) for d in node["dispatches"]] == expected, node["contactId"]
    # Each message id is the one the provider gave.
    by_dispatch = {m.dispatch_id: m.message_id for m in providers.taken() if m.dispatch_id}
    listed = [d for n in shown["enrollments"]["nodes"] for d in n["dispatches"]]
    for dispatch in listed:
        if dispatch["status"] == "SENT":
            assert dispatch["providerMessageId"] == by_dispatch[dispatch["id"]]
    lost = [d for d in listed if d["status"] == "UNKNOWN"]
    assert [d["providerMessageId"] for d in lost] == [None]  # the one whose answer was lost
    assert lost[0]["lastErrorCode"]

    figures = await sending_figures(engine, instance_id)
    sending = shown["sending"]
    assert {
        "dueNow": sending["dueNow"],
        "inFlight": sending["inFlight"],
        "retrying": sending["retrying"],
        "failed": sending["failed"],
        "unknown": sending["unknown"],
        "sentToday": sending["sentToday"],
        "nextDueAt": when(sending["nextDueAt"]),
    } == {
        "dueNow": figures.due_now,
        "inFlight": figures.in_flight,
        "retrying": figures.retrying,
        "failed": figures.failed,
        "unknown": figures.unknown,
        "sentToday": figures.sent_today,
        "nextDueAt": figures.next_due_at,
    }
    # Every kind of figure is exercised (the comparison above is not of zeros).
    assert min(figures.due_now, figures.retrying, figures.failed, figures.unknown) > 0
    assert figures.sent_today == sum(d["status"] == "SENT" for d in listed) > 0
    assert sending["waitingOn"] == []  # development: every provider has a client


async def test_retry_dispatch_refuses_what_must_not_be_sent_again(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    write_key: str,
    read_key: str,
    sender_settings: Settings,
    providers: FakeProviders,
    run: Run,
) -> None:
    async def retry(dispatch_id: str, key: str = write_key) -> dict[str, Any]:
        body = await gql(client, key, RETRY, {"id": dispatch_id})
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["retryDispatch"]
        return payload

    def refused(payload: dict[str, Any], code: str) -> str:
        assert payload["dispatch"] is None, payload
        [error] = payload["errors"]
        assert (error["code"], error["field"]) == (code, ["id"]), error
        return str(error["message"])

    before = await rows(engine, "SELECT * FROM dispatches ORDER BY id")
    refused(await retry(str(uuid.uuid4())), "NOT_FOUND")
    sent = (await dispatch_rows(engine, run.enrollment_of[MIXED_CONTACTS - 1]))[0]
    assert sent.status == "sent"
    assert "sent" in refused(await retry(str(sent.id)), "INVALID_TRANSITION")
    failed_for_good = (await dispatch_rows(engine, run.enrollment_of[REFUSED]))[0]
    assert failed_for_good.status == "failed"
    status = await scalar(
        engine,
        "SELECT status::text FROM enrollments WHERE id = CAST(:e AS uuid)",
        e=run.enrollment_of[REFUSED],
    )
    assert status == "failed"
    assert status in refused(await retry(str(failed_for_good.id)), "INVALID_TRANSITION")
    forbidden = await gql(client, read_key, RETRY, {"id": str(failed_for_good.id)})
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await rows(engine, "SELECT * FROM dispatches ORDER BY id") == before

    # Given up after its attempts, its enrollment still running: queued again, afresh.
    gave_up = (await dispatch_rows(engine, run.enrollment_of[RETRIED]))[0]
    assert (gave_up.status, gave_up.attempts) == ("failed", sender_settings.send_max_attempts)
    payload = await retry(str(gave_up.id))
    assert payload["errors"] == []
    [stored] = await dispatch_rows(engine, run.enrollment_of[RETRIED])
    assert (stored.status, stored.attempts, stored.uncertain) == ("queued", 0, False)
    assert stored.next_attempt_at is not None
    assert parsed(payload["dispatch"]) == as_graphql(stored)
    # ...and a sender sends it (the provider takes it now), once.
    providers.script = lambda provider, message: Reply.taken()

    async def delivered() -> bool:
        first = (await dispatch_rows(engine, run.enrollment_of[RETRIED]))[0]
        return bool(first.status == "sent")

    async with running_sender(sender_settings):
        await eventually(delivered)
    [again, *_] = await dispatch_rows(engine, run.enrollment_of[RETRIED])
    assert (again.id, again.attempts) == (gave_up.id, 1)
    assert providers.taken_by_dispatch()[str(again.id)] == 1

    # An unknown touch of a closed instance is not sent again.
    lost = (await dispatch_rows(engine, run.enrollment_of[LOST]))[1]
    assert (lost.channel, lost.status) == ("linkedin", "unknown")
    closed = await mutate(
        client, write_key, COMPLETE_INSTANCE, "completeInstance", {"id": run.campaign.instance_id}
    )
    assert closed["errors"] == [], closed
    refused(await retry(str(lost.id)), "INSTANCE_CLOSED")
    assert (await dispatch_rows(engine, run.enrollment_of[LOST]))[1] == lost
