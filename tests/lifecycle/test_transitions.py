"""The instance status machine, every row of it: start, pause, resume, complete, fail, from
every status. Allowed transitions are checked for their effects in the database (timestamps,
enrollments, one audit row); refused ones for INVALID_TRANSITION naming the current status and
for NOTHING written (instance row, enrollments and log identical, ``updated_at`` included)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    PATH_TO,
    PAUSE_ENROLLMENT,
    REMOVE_EMAIL_STEP,
    REMOVE_ENROLLMENT,
    REMOVE_LINKEDIN_STEP,
    STATUSES,
    add_email_step,
    add_linkedin_step,
    archive_template,
    assert_refused,
    bulk_enroll,
    contacts,
    create_instance,
    create_template,
    db_now,
    engine_of,
    instance_row,
    mutate,
    ok,
    random_id,
    run_transition,
    snapshot,
    transition_rows,
)

WRITER = "test-writer"
FIRST_DELAY = 3
REASON = "provider account suspended"

# The status machine of domain.md: transition -> (sources, target).
MACHINE = {
    "start": ({"draft"}, "active"),
    "pause": ({"active"}, "paused"),
    "resume": ({"paused"}, "active"),
    "complete": ({"active", "paused"}, "completed"),
    "fail": ({"draft", "active", "paused"}, "failed"),
}
ALLOWED = [
    (name, src) for name, (sources, _) in MACHINE.items() for src in STATUSES if src in sources
]
REFUSED = [
    (name, src) for name, (sources, _) in MACHINE.items() for src in STATUSES if src not in sources
]
NON_TERMINAL = {"enrolled", "active", "paused"}


def test_the_parametrization_covers_the_whole_table() -> None:
    assert len(ALLOWED) == 8
    assert len(REFUSED) == 5 * 5 - 8
    assert set(ALLOWED) | set(REFUSED) == {(n, s) for n in MACHINE for s in STATUSES}


async def _populated_instance(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, status: str, full: bool = True
) -> str:
    """An instance of a two-step email template with contacts, brought to ``status`` through the
    API. ``full``: c-1 enrolled, c-2 paused and c-3 removed while it was a draft; otherwise
    only c-1 and c-2, both enrolled (a lighter setup for the refusals)."""
    template_id = await create_template(
        client, key, "EMAIL", email=[(1, FIRST_DELAY), (2, FIRST_DELAY + 20)]
    )
    instance_id: str = (await create_instance(client, key, template_id))["id"]
    size = 3 if full else 2
    result = await bulk_enroll(client, key, instance_id, contacts(range(1, size + 1), "c-"))
    assert result["errors"] == [], result
    assert len(result["enrollments"]) == size, result
    if full:
        by_contact = {e["contactId"]: e["id"] for e in result["enrollments"]}
        paused = await mutate(
            client, key, PAUSE_ENROLLMENT, "pauseEnrollment", {"id": by_contact["c-2"]}
        )
        ok(paused, "enrollment")
        removed = await mutate(
            client, key, REMOVE_ENROLLMENT, "removeEnrollment", {"id": by_contact["c-3"]}
        )
        ok(removed, "enrollment")
    for name in PATH_TO[status]:
        ok(await run_transition(client, key, instance_id, name, REASON), "instance")
    assert (await instance_row(engine, instance_id))["status"] == status
    return instance_id


def _by_contact(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["contact_id"]: r for r in rows}


@pytest.mark.parametrize(("name", "source"), ALLOWED)
async def test_allowed_transition(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str, source: str
) -> None:
    engine = engine_of(app)
    instance_id = await _populated_instance(client, write_key, engine, source)
    before = await snapshot(engine, instance_id)
    clock_before = await db_now(engine)

    result = await run_transition(client, write_key, instance_id, name, REASON)

    clock_after = await db_now(engine)
    target = MACHINE[name][1]
    instance = ok(result, "instance")
    assert instance["status"] == target.upper()
    after = await snapshot(engine, instance_id)
    old, new = before["instance"], after["instance"]
    assert new["status"] == target

    # Exactly one audit row, appended, naming from, to, actor and (for fail) the reason.
    assert after["transitions"][: len(before["transitions"])] == before["transitions"]
    assert len(after["transitions"]) == len(before["transitions"]) + 1
    added = after["transitions"][-1]
    expected_reason = REASON if name == "fail" else None
    assert (added["from_status"], added["to_status"], added["actor"], added["reason"]) == (
        source,
        target,
        WRITER,
        expected_reason,
    )
    assert clock_before <= added["at"] <= clock_after
    assert instance["transitions"][-1]["toStatus"] == target.upper()

    # The instance's own columns.
    unchanged = {"started_at", "paused_at", "completed_at", "failure_reason"}
    if name == "start":
        assert old["started_at"] is None
        assert clock_before <= new["started_at"] <= clock_after
        unchanged.discard("started_at")
    elif name == "pause":
        assert old["paused_at"] is None
        assert clock_before <= new["paused_at"] <= clock_after
        unchanged.discard("paused_at")
    elif name == "resume":
        assert old["paused_at"] is not None
        assert new["paused_at"] is None
        unchanged.discard("paused_at")
    elif name == "complete":
        assert clock_before <= new["completed_at"] <= clock_after
        unchanged.discard("completed_at")
    else:
        assert new["failure_reason"] == REASON
        unchanged.discard("failure_reason")
    for column in unchanged:
        assert new[column] == old[column], column
    assert new["total_enrolled"] == old["total_enrolled"] == 3

    # The enrollments.
    was, now = _by_contact(before["enrollments"]), _by_contact(after["enrollments"])
    assert set(was) == set(now) == {"c-1", "c-2", "c-3"}
    assert now["c-3"] == was["c-3"]  # removed (terminal): untouched, updated_at included
    assert was["c-3"]["status"] == "removed"
    for contact in ("c-1", "c-2"):
        e_old, e_new = was[contact], now[contact]
        if name == "start":
            if e_old["status"] == "enrolled":
                assert e_new["status"] == "active"
                assert e_new["next_action_at"] == new["started_at"] + timedelta(hours=FIRST_DELAY)
            else:  # a paused contact stays paused: start only wakes `enrolled` ones
                assert e_new == e_old
        elif name in ("pause", "resume"):
            assert e_new == e_old
        elif name == "complete":
            assert e_old["status"] in NON_TERMINAL
            assert e_new["status"] == "completed"
            assert e_new["completed_at"] == new["completed_at"]
            assert e_new["next_action_at"] is None
        else:
            assert e_old["status"] in NON_TERMINAL
            assert e_new["status"] == "failed"
            assert e_new["next_action_at"] is None


@pytest.mark.parametrize(("name", "source"), REFUSED)
async def test_refused_transition_names_the_status_and_writes_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str, source: str
) -> None:
    engine = engine_of(app)
    instance_id = await _populated_instance(client, write_key, engine, source, full=False)
    before = await snapshot(engine, instance_id)
    assert len(before["enrollments"]) == 2

    result = await run_transition(client, write_key, instance_id, name, REASON)

    error = assert_refused(result, "instance", "INVALID_TRANSITION", ["id"])
    named = {s for s in STATUSES if re.search(rf"\b{s}\b", error["message"].lower())}
    assert named == {source}, error  # the current status, and no other
    assert await snapshot(engine, instance_id) == before


async def test_pause_then_resume_sets_and_clears_paused_at(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _populated_instance(client, write_key, engine, "active")
    started_at = (await instance_row(engine, instance_id))["started_at"]
    for _ in range(2):
        clock_before = await db_now(engine)
        ok(await run_transition(client, write_key, instance_id, "pause"), "instance")
        clock_after = await db_now(engine)
        paused = await instance_row(engine, instance_id)
        assert paused["status"] == "paused"
        assert clock_before <= paused["paused_at"] <= clock_after
        ok(await run_transition(client, write_key, instance_id, "resume"), "instance")
        resumed = await instance_row(engine, instance_id)
        assert resumed["status"] == "active"
        assert resumed["paused_at"] is None
        assert resumed["started_at"] == started_at
    log = await transition_rows(engine, instance_id)
    assert [(t["from_status"], t["to_status"]) for t in log] == [
        (None, "draft"),
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "paused"),
        ("paused", "active"),
    ]


# --- the first step's delay ---------------------------------------------------------------------


async def _remove(client: httpx.AsyncClient, key: str, channel: str, step_id: str) -> None:
    document, field = (
        (REMOVE_EMAIL_STEP, "removeEmailStep")
        if channel == "email"
        else (REMOVE_LINKEDIN_STEP, "removeLinkedInStep")
    )
    ok(await mutate(client, key, document, field, {"id": step_id}), "step")


async def _start_and_delay(
    app: Starlette, client: httpx.AsyncClient, key: str, template_id: str
) -> timedelta:
    """Start an instance of the template with one enrolled contact; its next_action_at minus the
    instance's started_at."""
    engine = engine_of(app)
    instance_id = (await create_instance(client, key, template_id))["id"]
    assert (await bulk_enroll(client, key, instance_id, contacts(["x"])))["enrolledCount"] == 1
    ok(await run_transition(client, key, instance_id, "start"), "instance")
    state = await snapshot(engine, instance_id)
    [enrollment] = state["enrollments"]
    assert enrollment["status"] == "active"
    delay: timedelta = enrollment["next_action_at"] - state["instance"]["started_at"]
    return delay


async def test_first_delay_of_a_multi_channel_template_is_the_smallest_at_step_one(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(
        client, write_key, "MULTI_CHANNEL", email=[(1, 5), (2, 0)], linkedin=[(1, 2), (3, 1)]
    )
    assert await _start_and_delay(app, client, write_key, template_id) == timedelta(hours=2)


async def test_first_delay_ignores_inactive_steps(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """Step 1 (delay 1) is removed, so step 2 is first: the smallest of its delays (7 and 9),
    not step 1's nor the removed LinkedIn step 2's (0)."""
    template_id = await create_template(client, write_key, "MULTI_CHANNEL")
    removed_first = await add_email_step(client, write_key, template_id, 1, 1)
    removed_linkedin = await add_linkedin_step(client, write_key, template_id, 2, 0)
    await add_email_step(client, write_key, template_id, 2, 9)
    await add_email_step(client, write_key, template_id, 3, 0)
    await _remove(client, write_key, "email", removed_first)
    await _remove(client, write_key, "linkedin", removed_linkedin)
    await add_linkedin_step(client, write_key, template_id, 2, 7)
    assert await _start_and_delay(app, client, write_key, template_id) == timedelta(hours=7)


async def test_first_delay_ignores_channels_the_template_does_not_use(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(
        client, write_key, "LINKEDIN", email=[(1, 0)], linkedin=[(1, 6)]
    )
    assert await _start_and_delay(app, client, write_key, template_id) == timedelta(hours=6)


async def test_first_delay_after_a_step_is_replaced_at_the_same_number(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL")
    old = await add_email_step(client, write_key, template_id, 1, 0)
    await _remove(client, write_key, "email", old)
    await add_email_step(client, write_key, template_id, 1, 4)
    assert await _start_and_delay(app, client, write_key, template_id) == timedelta(hours=4)


# --- preconditions --------------------------------------------------------------------------------


async def _draft_with_contact(client: httpx.AsyncClient, key: str, template_id: str) -> str:
    instance_id: str = (await create_instance(client, key, template_id))["id"]
    assert (await bulk_enroll(client, key, instance_id, contacts(["p"])))["enrolledCount"] == 1
    return instance_id


async def test_start_with_an_archived_template_is_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 1)])
    instance_id = await _draft_with_contact(client, write_key, template_id)
    await archive_template(client, write_key, template_id)
    before = await snapshot(engine, instance_id)
    result = await run_transition(client, write_key, instance_id, "start")
    error = assert_refused(result, "instance", "TEMPLATE_INACTIVE", ["id"])
    assert template_id in error["message"]
    assert await snapshot(engine, instance_id) == before


@pytest.mark.parametrize(
    ("template_type", "email", "linkedin", "remove_all"),
    [
        ("LINKEDIN", [(1, 0), (2, 0)], [], False),
        ("EMAIL", [], [(1, 0)], False),
        ("MULTI_CHANNEL", [], [], False),
        ("EMAIL", [(1, 0), (2, 5)], [], True),
        ("MULTI_CHANNEL", [(1, 0)], [(1, 0)], True),
    ],
    ids=[
        "linkedin-with-only-email-steps",
        "email-with-only-linkedin-steps",
        "no-steps",
        "email-steps-all-removed",
        "multi-channel-steps-all-removed",
    ],
)
async def test_start_without_an_active_step_on_the_channels_is_empty(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_type: str,
    email: list[tuple[int, int]],
    linkedin: list[tuple[int, int]],
    remove_all: bool,
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, template_type)
    steps = [
        ("email", await add_email_step(client, write_key, template_id, n, d)) for n, d in email
    ]
    steps += [
        ("linkedin", await add_linkedin_step(client, write_key, template_id, n, d))
        for n, d in linkedin
    ]
    if remove_all:
        for channel, step_id in steps:
            await _remove(client, write_key, channel, step_id)
    instance_id = await _draft_with_contact(client, write_key, template_id)
    before = await snapshot(engine, instance_id)
    result = await run_transition(client, write_key, instance_id, "start")
    assert_refused(result, "instance", "TEMPLATE_EMPTY", ["id"])
    assert await snapshot(engine, instance_id) == before


@pytest.mark.parametrize("reason", ["", "   ", "\t\n", "r" * 2001])
async def test_fail_needs_a_reason(
    app: Starlette, client: httpx.AsyncClient, write_key: str, reason: str
) -> None:
    engine = engine_of(app)
    instance_id = await _populated_instance(client, write_key, engine, "active", full=False)
    before = await snapshot(engine, instance_id)
    result = await run_transition(client, write_key, instance_id, "fail", reason)
    assert_refused(result, "instance", "INVALID", ["reason"])
    assert await snapshot(engine, instance_id) == before


@pytest.mark.parametrize("name", list(MACHINE))
async def test_unknown_and_malformed_instance_ids(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str
) -> None:
    missing = random_id()
    result = await run_transition(client, write_key, missing, name)
    error = assert_refused(result, "instance", "NOT_FOUND", ["id"])
    assert missing in error["message"]
    result = await run_transition(client, write_key, "12345", name)
    assert_refused(result, "instance", "INVALID", ["id"])
