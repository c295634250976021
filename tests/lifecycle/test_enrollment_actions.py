"""pauseEnrollment, resumeEnrollment, removeEnrollment: one contact's status, with refusals that
name the current status and change nothing; removal keeps events and never lowers
total_enrolled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.lifecycle.helpers import (
    PAUSE_ENROLLMENT,
    REMOVE_ENROLLMENT,
    RESUME_ENROLLMENT,
    assert_refused,
    create_template,
    db_now,
    engine_of,
    enroll,
    enrollment_row,
    fetch_one,
    instance_in,
    instance_row,
    mutate,
    ok,
    random_id,
    run_transition,
)

FIRST_DELAY = 6
ACTIONS = {
    "pause": (PAUSE_ENROLLMENT, "pauseEnrollment"),
    "resume": (RESUME_ENROLLMENT, "resumeEnrollment"),
    "remove": (REMOVE_ENROLLMENT, "removeEnrollment"),
}

RECORD_EVENT = """
mutation RecordEvent($input: RecordEventInput!) {
  recordEvent(input: $input) { event { id } duplicate errors { field code message } }
}
"""


async def _act(client: httpx.AsyncClient, key: str, action: str, enrollment_id: str) -> dict:
    document, field = ACTIONS[action]
    return await mutate(client, key, document, field, {"id": enrollment_id})


async def _record(client: httpx.AsyncClient, key: str, enrollment_id: str, kind: str) -> str:
    body = await gql(
        client,
        key,
        RECORD_EVENT,
        {"input": {"enrollmentId": enrollment_id, "eventType": kind, "stepNumber": 1}},
    )
    assert "errors" not in body, body
    result = body["data"]["recordEvent"]
    assert result["errors"] == [], result
    event_id: str = result["event"]["id"]
    return event_id


async def _setup(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, instance_status: str
) -> tuple[str, str]:
    """(instance id, template id): an EMAIL template with two steps, the instance brought to
    ``instance_status``."""
    template_id = await create_template(
        client, key, "EMAIL", email=[(1, FIRST_DELAY), (2, FIRST_DELAY + 10)]
    )
    instance_id = await instance_in(client, key, engine, template_id, instance_status)
    return instance_id, template_id


async def _enrollment_in(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, status: str
) -> tuple[str, str]:
    """(enrollment id, instance id) for an enrollment brought to ``status`` through the API."""
    # Enrolled in a draft (then closed for completed/failed); active ones in a running instance.
    instance_status = "active" if status in ("active", "paused", "replied") else "draft"
    instance_id, _ = await _setup(client, key, engine, instance_status)
    enrollment_id = (await enroll(client, key, instance_id, f"contact-{status}"))["id"]
    if status == "paused":
        ok(await _act(client, key, "pause", enrollment_id), "enrollment")
    elif status == "removed":
        ok(await _act(client, key, "remove", enrollment_id), "enrollment")
    elif status == "completed":
        for name in ("start", "complete"):
            ok(await run_transition(client, key, instance_id, name), "instance")
    elif status == "failed":
        ok(await run_transition(client, key, instance_id, "fail"), "instance")
    elif status == "replied":
        await _record(client, key, enrollment_id, "REPLIED")
    assert (await enrollment_row(engine, enrollment_id))["status"] == status
    return enrollment_id, instance_id


@pytest.mark.parametrize("source", ["enrolled", "active"])
async def test_pause(
    app: Starlette, client: httpx.AsyncClient, write_key: str, source: str
) -> None:
    engine = engine_of(app)
    enrollment_id, _ = await _enrollment_in(client, write_key, engine, source)
    before = await enrollment_row(engine, enrollment_id)
    result = ok(await _act(client, write_key, "pause", enrollment_id), "enrollment")
    assert result["status"] == "PAUSED"
    after = await enrollment_row(engine, enrollment_id)
    assert after["status"] == "paused"
    assert after["current_step"] == before["current_step"]
    assert after["metadata"] == before["metadata"]


async def test_resume_while_the_instance_is_a_draft_is_enrolled_again(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id, _ = await _setup(client, write_key, engine, "draft")
    enrollment_id = (await enroll(client, write_key, instance_id, "d"))["id"]
    ok(await _act(client, write_key, "pause", enrollment_id), "enrollment")
    result = ok(await _act(client, write_key, "resume", enrollment_id), "enrollment")
    assert result["status"] == "ENROLLED"
    after = await enrollment_row(engine, enrollment_id)
    assert (after["status"], after["next_action_at"]) == ("enrolled", None)


async def test_resume_in_a_running_instance_keeps_the_due_time(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    enrollment_id, _ = await _enrollment_in(client, write_key, engine, "paused")
    due = (await enrollment_row(engine, enrollment_id))["next_action_at"]
    assert due is not None
    result = ok(await _act(client, write_key, "resume", enrollment_id), "enrollment")
    assert result["status"] == "ACTIVE"
    after = await enrollment_row(engine, enrollment_id)
    assert (after["status"], after["next_action_at"]) == ("active", due)


async def test_resume_after_the_instance_started_becomes_due_after_the_first_step(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """Paused while a draft, the contact was not woken by start; resuming makes it due."""
    engine = engine_of(app)
    instance_id, _ = await _setup(client, write_key, engine, "draft")
    enrollment_id = (await enroll(client, write_key, instance_id, "late"))["id"]
    ok(await _act(client, write_key, "pause", enrollment_id), "enrollment")
    ok(await run_transition(client, write_key, instance_id, "start"), "instance")
    paused = await enrollment_row(engine, enrollment_id)
    assert (paused["status"], paused["next_action_at"]) == ("paused", None)
    before = await db_now(engine)
    ok(await _act(client, write_key, "resume", enrollment_id), "enrollment")
    after_clock = await db_now(engine)
    after = await enrollment_row(engine, enrollment_id)
    assert after["status"] == "active"
    delay = timedelta(hours=FIRST_DELAY)
    assert before + delay <= after["next_action_at"] <= after_clock + delay


@pytest.mark.parametrize("source", ["enrolled", "active", "paused"])
async def test_remove_keeps_events_and_total_enrolled(
    app: Starlette, client: httpx.AsyncClient, write_key: str, source: str
) -> None:
    engine = engine_of(app)
    enrollment_id, instance_id = await _enrollment_in(client, write_key, engine, source)
    events: list[str] = []
    if source != "enrolled":
        events.append(await _record(client, write_key, enrollment_id, "SENT"))
        events.append(await _record(client, write_key, enrollment_id, "OPENED"))
    total_before = (await instance_row(engine, instance_id))["total_enrolled"]
    assert total_before == 1

    result = ok(await _act(client, write_key, "remove", enrollment_id), "enrollment")

    assert result["status"] == "REMOVED"
    after = await enrollment_row(engine, enrollment_id)
    assert (after["status"], after["next_action_at"]) == ("removed", None)
    assert (await instance_row(engine, instance_id))["total_enrolled"] == total_before
    kept = await fetch_one(
        engine,
        "SELECT count(*) AS n FROM campaign_events WHERE enrollment_id = CAST(:id AS uuid)",
        id=enrollment_id,
    )
    assert kept["n"] == len(events)


REFUSED = [
    ("pause", "paused"),
    ("pause", "removed"),
    ("pause", "completed"),
    ("pause", "failed"),
    ("pause", "replied"),
    ("resume", "enrolled"),
    ("resume", "active"),
    ("resume", "removed"),
    ("resume", "completed"),
    ("remove", "removed"),
    ("remove", "completed"),
    ("remove", "failed"),
    ("remove", "replied"),
]


@pytest.mark.parametrize(("action", "source"), REFUSED)
async def test_refused_action_names_the_status_and_changes_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str, action: str, source: str
) -> None:
    engine = engine_of(app)
    enrollment_id, instance_id = await _enrollment_in(client, write_key, engine, source)
    before = await enrollment_row(engine, enrollment_id)
    instance_before = await instance_row(engine, instance_id)
    result = await _act(client, write_key, action, enrollment_id)
    error = assert_refused(result, "enrollment", "INVALID_TRANSITION", ["id"])
    assert source in error["message"].lower(), error
    assert await enrollment_row(engine, enrollment_id) == before
    assert await instance_row(engine, instance_id) == instance_before


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_unknown_and_malformed_enrollment_ids(
    app: Starlette, client: httpx.AsyncClient, write_key: str, action: str
) -> None:
    missing = random_id()
    error = assert_refused(
        await _act(client, write_key, action, missing), "enrollment", "NOT_FOUND", ["id"]
    )
    assert missing in error["message"]
    assert_refused(await _act(client, write_key, action, "bogus"), "enrollment", "INVALID", ["id"])


def test_refusals_cover_every_terminal_status_used() -> None:
    sources: dict[str, Any] = {}
    for action, source in REFUSED:
        sources.setdefault(action, set()).add(source)
    assert {"removed", "completed", "failed"} <= sources["remove"]
    assert {"paused", "removed", "completed"} <= sources["pause"]
    assert {"enrolled", "active", "removed"} <= sources["resume"]
