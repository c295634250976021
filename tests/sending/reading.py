"""Reading what a sending test looks at: dispatch and enrollment rows, the events, an
instance's sending figures and retryDispatch through GraphQL, and the statements a sender
runs (to see it look for work and go to sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql_client import gql
from tests.sending.conftest import rows, scalar


def enrollments_reach(
    engine: AsyncEngine, instance_id: str, status: str, count: int
) -> Callable[[], Awaitable[bool]]:
    """For ``eventually``: ``count`` enrollments of the instance have ``status``."""
    return _rows_reach(engine, "enrollments", instance_id, status, count)


def dispatches_reach(
    engine: AsyncEngine, instance_id: str, status: str, count: int
) -> Callable[[], Awaitable[bool]]:
    """For ``eventually``: ``count`` dispatches of the instance have ``status``."""
    return _rows_reach(engine, "dispatches", instance_id, status, count)


def _rows_reach(
    engine: AsyncEngine, table: str, instance_id: str, status: str, count: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await scalar(
            engine,
            f"SELECT count(*) FROM {table} WHERE instance_id = CAST(:i AS uuid)"
            " AND status::text = :s",
            i=instance_id,
            s=status,
        )
        return bool(found == count)

    check.__name__ = f"{count} {table} {status}"
    return check


async def dispatches(engine: AsyncEngine, instance_id: str) -> list[Any]:
    """The instance's dispatch rows (ids as text), by enrollment, channel and step."""
    return await rows(
        engine,
        "SELECT id::text AS id, enrollment_id::text AS enrollment_id, channel::text AS channel,"
        " step_number, status::text AS status, attempts, provider_message_id, last_error,"
        " last_error_code, uncertain, dry_run, claimed_by, next_attempt_at"
        " FROM dispatches WHERE instance_id = CAST(:i AS uuid)"
        " ORDER BY enrollment_id, channel, step_number",
        i=instance_id,
    )


async def enrollment_row(engine: AsyncEngine, enrollment_id: str) -> Any:
    [row] = await rows(
        engine,
        "SELECT status::text AS status, current_step, next_action_at, metadata"
        " FROM enrollments WHERE id = CAST(:e AS uuid)",
        e=enrollment_id,
    )
    return row


async def events_of(engine: AsyncEngine, enrollment_id: str) -> list[Any]:
    return await rows(
        engine,
        "SELECT event_type::text AS event_type, provider::text AS provider, step_number,"
        " provider_event_id, metadata FROM campaign_events"
        " WHERE enrollment_id = CAST(:e AS uuid) ORDER BY occurred_at, id",
        e=enrollment_id,
    )


SENDING_FIELDS = "dueNow inFlight retrying failed unknown sentToday nextDueAt waitingOn"


async def sending_of(client: httpx.AsyncClient, key: str, instance_id: str) -> dict[str, Any]:
    """``CampaignInstance.sending`` as an operator reads it."""
    body = await gql(
        client,
        key,
        f"query($id: ID!) {{ instance(id: $id) {{ sending {{ {SENDING_FIELDS} }} }} }}",
        {"id": instance_id},
    )
    assert "errors" not in body, body
    sending: dict[str, Any] = body["data"]["instance"]["sending"]
    return sending


async def retry_dispatch(client: httpx.AsyncClient, key: str, dispatch_id: str) -> dict[str, Any]:
    body = await gql(
        client,
        key,
        "mutation($id: ID!) { retryDispatch(id: $id) {"
        " dispatch { id status attempts } errors { code message } } }",
        {"id": dispatch_id},
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["retryDispatch"]
    return payload


async def notify_senders(engine: AsyncEngine) -> None:
    """What a committed write that makes work due does: NOTIFY the senders' channel."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_notify('campaign_sender', '')"))


def outlooks(statements: list[str]) -> int:
    """How many times a sender looked for its next work before sleeping (schedule.outlook)."""
    return sum("AS backlog" in s for s in statements)


async def asleep(statements: list[str], quiet_s: float = 0.3, timeout_s: float = 30.0) -> None:
    """Wait until the sender, whose statements these are, has looked for its next work and
    gone to sleep: its last statement is that look, and nothing followed for ``quiet_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        seen = len(statements)
        await asyncio.sleep(quiet_s)
        if seen and len(statements) == seen and outlooks(statements[-1:]):
            return
        if loop.time() > deadline:
            raise AssertionError(f"the sender did not go to sleep within {timeout_s} s")


async def enrollment_of(engine: AsyncEngine, instance_id: str, contact_id: str) -> str:
    """The id of the contact's enrollment in the instance."""
    found = await scalar(
        engine,
        "SELECT id::text FROM enrollments WHERE instance_id = CAST(:i AS uuid) AND contact_id = :c",
        i=instance_id,
        c=contact_id,
    )
    assert found is not None, (instance_id, contact_id)
    return str(found)
