"""enrollContact: ENROLLED in a draft, ACTIVE and due after the first step in a running
instance, refused in a closed one, once per contact, and total_enrolled rises by exactly one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    ENROLL_CONTACT,
    assert_refused,
    count,
    create_instance,
    create_template,
    db_now,
    engine_of,
    enroll,
    enrollment_row,
    enrollment_rows,
    instance_in,
    instance_row,
    mutate,
    ok,
    person,
    random_id,
    run_transition,
)

FIRST_DELAY = 5


async def _enroll_raw(
    client: httpx.AsyncClient, key: str, instance_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    return await mutate(
        client, key, ENROLL_CONTACT, "enrollContact", {"instanceId": instance_id, "input": data}
    )


async def _template(client: httpx.AsyncClient, key: str) -> str:
    return await create_template(
        client, key, "EMAIL", email=[(1, FIRST_DELAY), (2, FIRST_DELAY - 4)]
    )


async def _state(engine: AsyncEngine, instance_id: str) -> tuple[int, list[dict[str, Any]]]:
    total = (await instance_row(engine, instance_id))["total_enrolled"]
    return total, await enrollment_rows(engine, instance_id)


async def test_draft_instance_enrolls_without_a_due_time(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "draft"
    )
    metadata = person("hubspot-42", first_name="Ada", company="Acme", tags=["vip"])
    enrollment = await enroll(client, write_key, instance_id, "hubspot-42", metadata)
    assert enrollment["status"] == "ENROLLED"
    assert enrollment["nextActionAt"] is None
    assert enrollment["contactId"] == "hubspot-42"
    assert enrollment["currentStep"] == 0
    assert enrollment["instance"]["id"] == instance_id
    row = await enrollment_row(engine, enrollment["id"])
    assert (row["status"], row["next_action_at"], row["contact_id"]) == (
        "enrolled",
        None,
        "hubspot-42",
    )
    assert row["metadata"] == metadata
    assert str(row["instance_id"]) == instance_id
    assert (await instance_row(engine, instance_id))["total_enrolled"] == 1


@pytest.mark.parametrize("status", ["active", "paused"])
async def test_running_instance_enrolls_active_and_due_after_the_first_step(
    app: Starlette, client: httpx.AsyncClient, write_key: str, status: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), status
    )
    before = await db_now(engine)
    enrollment = await enroll(client, write_key, instance_id, "sf-0035g00000XyZ")
    after = await db_now(engine)
    assert enrollment["status"] == "ACTIVE"
    row = await enrollment_row(engine, enrollment["id"])
    assert row["status"] == "active"
    delay = timedelta(hours=FIRST_DELAY)
    assert before + delay <= row["next_action_at"] <= after + delay
    assert datetime.fromisoformat(enrollment["nextActionAt"]) == row["next_action_at"]
    assert (await instance_row(engine, instance_id))["status"] == status  # not moved


async def test_running_multi_channel_instance_uses_the_smallest_delay_of_step_one(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    template_id = await create_template(
        client, write_key, "MULTI_CHANNEL", email=[(1, 5)], linkedin=[(1, 2), (2, 0)]
    )
    instance_id = await instance_in(client, write_key, engine, template_id, "active")
    before = await db_now(engine)
    enrollment = await enroll(client, write_key, instance_id, "c")
    after = await db_now(engine)
    due = (await enrollment_row(engine, enrollment["id"]))["next_action_at"]
    assert before + timedelta(hours=2) <= due <= after + timedelta(hours=2)


@pytest.mark.parametrize("status", ["completed", "failed"])
async def test_closed_instance_refuses_new_contacts(
    app: Starlette, client: httpx.AsyncClient, write_key: str, status: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), status
    )
    before = await _state(engine, instance_id)
    late = {"contactId": "late", "metadata": person("late")}
    result = await _enroll_raw(client, write_key, instance_id, late)
    error = assert_refused(result, "enrollment", "INSTANCE_CLOSED", ["instanceId"])
    assert status in error["message"]
    assert await _state(engine, instance_id) == before


async def test_enrolling_again_names_the_existing_enrollment(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "active"
    )
    first = await enroll(client, write_key, instance_id, "dup", person("dup", first_name="A"))
    before = await _state(engine, instance_id)
    result = await _enroll_raw(
        client,
        write_key,
        instance_id,
        {"contactId": "dup", "metadata": person("dup", first_name="B")},
    )
    error = assert_refused(result, "enrollment", "ALREADY_ENROLLED", ["input", "contactId"])
    assert first["id"] in error["message"]
    assert await _state(engine, instance_id) == before  # metadata not overwritten either


async def test_the_same_contact_may_be_in_two_instances(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    template_id = await _template(client, write_key)
    one = await instance_in(client, write_key, engine, template_id, "draft")
    two = await instance_in(client, write_key, engine, template_id, "draft")
    await enroll(client, write_key, one, "shared")
    await enroll(client, write_key, two, "shared")
    assert await count(engine, "enrollments", "contact_id = 'shared'") == 2


async def test_total_enrolled_rises_by_exactly_one_per_enrollment(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "active"
    )
    for n in range(1, 4):
        await enroll(client, write_key, instance_id, f"c{n}")
        assert (await instance_row(engine, instance_id))["total_enrolled"] == n
        assert await count(engine, "enrollments") == n
    again = await _enroll_raw(
        client, write_key, instance_id, {"contactId": "c1", "metadata": person("c1")}
    )
    assert_refused(again, "enrollment", "ALREADY_ENROLLED", ["input", "contactId"])
    await _enroll_raw(client, write_key, instance_id, {"contactId": ""})  # refused
    assert (await instance_row(engine, instance_id))["total_enrolled"] == 3


async def test_contact_id_of_255_characters_is_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "draft"
    )
    contact_id = "k" * 255
    enrollment = await enroll(client, write_key, instance_id, contact_id)
    assert (await enrollment_row(engine, enrollment["id"]))["contact_id"] == contact_id


def _nested(depth: int) -> dict[str, Any]:
    """A JSON object whose nesting depth (objects and arrays) is exactly ``depth``."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"down": value}
    return value


def _sized(size: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object whose compact-free, non-ASCII-escaping serialization is ``size`` bytes:
    ``base`` plus a padding key."""
    value = (base or {}) | {"k": ""}
    value["k"] = "x" * (size - len(json.dumps(value, ensure_ascii=False).encode()))
    assert len(json.dumps(value, ensure_ascii=False).encode()) == size
    return value


# What the template of these tests needs of a contact, and nothing else: its e-mail address
# and the first_name its bodies use.
REQUIRED = {"email": "m@example.com", "first_name": "Ada"}


@pytest.mark.parametrize(
    "metadata",
    [REQUIRED | {"nested": _nested(4)}, _sized(10_240, REQUIRED), REQUIRED],
    ids=["depth-5", "10240-bytes", "only-the-required-keys"],
)
async def test_metadata_within_limits_is_stored(
    app: Starlette, client: httpx.AsyncClient, write_key: str, metadata: dict[str, Any]
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "draft"
    )
    enrollment = await enroll(client, write_key, instance_id, "m", metadata)
    assert (await enrollment_row(engine, enrollment["id"]))["metadata"] == metadata


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"contactId": ""}, "contactId"),
        ({"contactId": "   "}, "contactId"),
        ({"contactId": "c" * 256}, "contactId"),
        ({"contactId": "ok", "metadata": ["first_name"]}, "metadata"),
        ({"contactId": "ok", "metadata": "Ada"}, "metadata"),
        ({"contactId": "ok", "metadata": 7}, "metadata"),
        ({"contactId": "ok", "metadata": REQUIRED | {"nested": _nested(5)}}, "metadata"),
        ({"contactId": "ok", "metadata": _sized(10_241, REQUIRED)}, "metadata"),
    ],
    ids=[
        "blank",
        "spaces",
        "256-chars",
        "metadata-array",
        "metadata-string",
        "metadata-number",
        "metadata-depth-6",
        "metadata-10241-bytes",
    ],
)
async def test_invalid_contact_is_refused_and_nothing_is_written(
    app: Starlette, client: httpx.AsyncClient, write_key: str, data: dict[str, Any], field: str
) -> None:
    engine = engine_of(app)
    instance_id = await instance_in(
        client, write_key, engine, await _template(client, write_key), "active"
    )
    before = await _state(engine, instance_id)
    result = await _enroll_raw(client, write_key, instance_id, data)
    assert_refused(result, "enrollment", "INVALID", ["input", field])
    assert await _state(engine, instance_id) == before


async def test_unknown_and_malformed_instance_ids(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    missing = random_id()
    result = await _enroll_raw(client, write_key, missing, {"contactId": "x"})
    error = assert_refused(result, "enrollment", "NOT_FOUND", ["instanceId"])
    assert missing in error["message"]
    result = await _enroll_raw(client, write_key, "nope", {"contactId": "x"})
    assert_refused(result, "enrollment", "INVALID", ["instanceId"])
    assert await count(engine_of(app), "enrollments") == 0


async def test_contact_enrolled_in_a_draft_becomes_due_when_the_instance_starts(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """Enrolled while a draft, the contact becomes due when the instance starts."""
    engine = engine_of(app)
    template_id = await _template(client, write_key)
    instance_id = (await create_instance(client, write_key, template_id))["id"]
    enrollment = await enroll(client, write_key, instance_id, "early")
    ok(await run_transition(client, write_key, instance_id, "start"), "instance")
    started_at = (await instance_row(engine, instance_id))["started_at"]
    row = await enrollment_row(engine, enrollment["id"])
    assert row["status"] == "active"
    assert row["next_action_at"] == started_at + timedelta(hours=FIRST_DELAY)
