"""bulkEnroll: up to 10,000 contacts in one transaction and one set-based insert; repeats and
members are skipped, a repeat of the whole call enrolls nothing, and a refusal writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.limits import BULK_ENROLL_MAX
from app.observability.sql_observer import recording
from tests.lifecycle.helpers import (
    BULK_ENROLL_COUNTS,
    bulk_enroll,
    contacts,
    create_template,
    db_now,
    engine_of,
    enroll,
    enrollment_rows,
    fetch_one,
    instance_in,
    person,
    random_id,
)

FIRST_DELAY = 8


async def _instance(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, status: str = "draft"
) -> str:
    template_id = await create_template(client, key, "EMAIL", email=[(1, FIRST_DELAY)])
    return await instance_in(client, key, engine, template_id, status)


def _compact(size: int) -> list[dict[str, Any]]:
    """``size`` contacts with only what the EMAIL template needs (an e-mail, a first_name), and
    their number: 10,000 of them stay within the request body limit."""
    return [
        {
            "contactId": f"c{n}",
            "metadata": {"email": f"c{n}@example.com", "first_name": "A", "n": n},
        }
        for n in range(size)
    ]


async def _stored(engine: AsyncEngine, instance_id: str) -> dict[str, Any]:
    """Row count, distinct contacts and the instance's counter, in one statement."""
    return await fetch_one(
        engine,
        "SELECT (SELECT count(*) FROM enrollments WHERE instance_id = i.id) AS rows,"
        " (SELECT count(DISTINCT contact_id) FROM enrollments WHERE instance_id = i.id)"
        " AS contacts, i.total_enrolled FROM campaign_instances i WHERE i.id = CAST(:id AS uuid)",
        id=instance_id,
    )


async def test_repeats_and_members_are_skipped(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine)
    member_metadata = person("a", first_name="Old")
    member = await enroll(client, write_key, instance_id, "a", member_metadata)
    request = [
        {"contactId": "a", "metadata": person("a", first_name="New")},
        {"contactId": "b", "metadata": person("b", first_name="Bea")},
        {"contactId": "c", "metadata": person("c")},
        {"contactId": "b", "metadata": person("b", first_name="Bea again")},
        {"contactId": "d", "metadata": person("d", company="Initech")},
        {"contactId": "c", "metadata": person("c", first_name="Cy")},
    ]
    result = await bulk_enroll(client, write_key, instance_id, request)
    assert result["errors"] == [], result
    new = {"b", "c", "d"}
    assert result["enrolledCount"] == len(new)
    assert result["skippedCount"] == len(request) - len(new)
    assert sorted(e["contactId"] for e in result["enrollments"]) == sorted(new)
    assert {e["status"] for e in result["enrollments"]} == {"ENROLLED"}
    assert {e["nextActionAt"] for e in result["enrollments"]} == {None}
    assert [(s["index"], s["contactId"], s["reason"]) for s in result["skipped"]] == [
        (0, "a", "ALREADY_ENROLLED"),
        (3, "b", "DUPLICATE_IN_REQUEST"),
        (5, "c", "DUPLICATE_IN_REQUEST"),
    ]
    assert all(s["message"] for s in result["skipped"]), result["skipped"]

    rows = {r["contact_id"]: r for r in await enrollment_rows(engine, instance_id)}
    assert set(rows) == new | {"a"}
    assert str(rows["a"]["id"]) == member["id"]
    assert rows["a"]["metadata"] == member_metadata  # a member is not overwritten
    first_sent = {c["contactId"]: c["metadata"] for c in reversed(request)}
    for contact in new:  # the first occurrence of a repeated contact wins
        assert rows[contact]["metadata"] == first_sent[contact], contact
    assert {r["status"] for r in rows.values()} == {"enrolled"}
    stored = await _stored(engine, instance_id)
    assert stored["rows"] == stored["total_enrolled"] == len(new) + 1


async def test_running_instance_enrolls_active_contacts_due_after_the_first_step(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "active")
    before = await db_now(engine)
    result = await bulk_enroll(client, write_key, instance_id, contacts(range(50)))
    after = await db_now(engine)
    assert result["errors"] == [], result
    assert result["enrolledCount"] == 50, result
    assert {e["status"] for e in result["enrollments"]} == {"ACTIVE"}
    rows = await enrollment_rows(engine, instance_id)
    assert len(rows) == 50
    delay = timedelta(hours=FIRST_DELAY)
    for row in rows:
        assert row["status"] == "active"
        assert before + delay <= row["next_action_at"] <= after + delay


async def test_the_same_call_twice_enrolls_nothing_the_second_time(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "active")
    request = contacts(range(120)) + contacts(range(10))  # 10 repeats inside the request
    first = await bulk_enroll(client, write_key, instance_id, request)
    assert first["errors"] == [], first
    assert (first["enrolledCount"], first["skippedCount"]) == (120, 10)
    rows_after_first = await enrollment_rows(engine, instance_id)

    second = await bulk_enroll(client, write_key, instance_id, request)
    assert second["errors"] == [], second
    assert (second["enrolledCount"], second["skippedCount"]) == (0, len(request))
    assert second["enrollments"] == []
    assert [(s["index"], s["reason"]) for s in second["skipped"]] == [
        (i, "ALREADY_ENROLLED" if i < 120 else "DUPLICATE_IN_REQUEST") for i in range(len(request))
    ]
    assert await enrollment_rows(engine, instance_id) == rows_after_first
    stored = await _stored(engine, instance_id)
    assert stored["rows"] == stored["total_enrolled"] == 120


async def test_an_empty_list_enrolls_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine)
    result = await bulk_enroll(client, write_key, instance_id, [])
    assert result["errors"] == []
    assert (result["enrolledCount"], result["skippedCount"]) == (0, 0)
    assert (await _stored(engine, instance_id))["rows"] == 0


async def test_more_than_the_limit_is_refused_and_nothing_is_written(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine)
    request = _compact(BULK_ENROLL_MAX + 1)
    result = await bulk_enroll(client, write_key, instance_id, request, BULK_ENROLL_COUNTS)
    assert len(result["errors"]) == 1, result["errors"]
    error = result["errors"][0]
    assert (error["code"], error["field"]) == ("LIMIT_EXCEEDED", ["contacts"])
    assert str(BULK_ENROLL_MAX + 1) in error["message"].replace(",", "")
    assert (result["enrolledCount"], result["skippedCount"]) == (0, 0)
    stored = await _stored(engine, instance_id)
    assert (stored["rows"], stored["total_enrolled"]) == (0, 0)


async def test_the_limit_itself_is_accepted_in_one_request(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "active")
    request = _compact(BULK_ENROLL_MAX)
    result = await bulk_enroll(client, write_key, instance_id, request, BULK_ENROLL_COUNTS)
    assert result["errors"] == [], result["errors"][:3]
    assert (result["enrolledCount"], result["skippedCount"]) == (BULK_ENROLL_MAX, 0)
    stored = await _stored(engine, instance_id)
    assert stored["rows"] == stored["contacts"] == stored["total_enrolled"] == BULK_ENROLL_MAX
    sample = await fetch_one(
        engine,
        "SELECT metadata FROM enrollments WHERE instance_id = CAST(:id AS uuid)"
        " AND contact_id = 'c9999'",
        id=instance_id,
    )
    assert sample["metadata"] == request[9999]["metadata"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"contactId": ""}, "contactId"),
        ({"contactId": "  "}, "contactId"),
        ({"contactId": "z" * 256}, "contactId"),
        ({"contactId": "ok-bad", "metadata": [1, 2]}, "metadata"),
    ],
    ids=["blank", "spaces", "256-chars", "metadata-array"],
)
async def test_one_invalid_contact_refuses_the_whole_batch(
    app: Starlette, client: httpx.AsyncClient, write_key: str, bad: dict[str, Any], field: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine)
    request = contacts(range(7))
    index = 4
    request.insert(index, bad)
    result = await bulk_enroll(client, write_key, instance_id, request)
    assert result["enrollments"] == []
    assert (result["enrolledCount"], result["skippedCount"]) == (0, 0)
    assert len(result["errors"]) == 1, result["errors"]
    error = result["errors"][0]
    assert error["code"] == "INVALID"
    assert error["field"] == ["contacts", str(index), field]
    stored = await _stored(engine, instance_id)
    assert (stored["rows"], stored["total_enrolled"]) == (0, 0)


async def test_every_invalid_contact_is_reported_with_its_index(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine)
    request = contacts(range(5))
    request[1] = {"contactId": ""}
    request[3] = {"contactId": "y" * 300, "metadata": "not an object"}
    result = await bulk_enroll(client, write_key, instance_id, request)
    assert sorted(tuple(e["field"]) for e in result["errors"]) == [
        ("contacts", "1", "contactId"),
        ("contacts", "3", "contactId"),
        ("contacts", "3", "metadata"),
    ]
    assert (await _stored(engine, instance_id))["rows"] == 0


@pytest.mark.parametrize("status", ["completed", "failed"])
async def test_closed_instance_refuses_the_batch(
    app: Starlette, client: httpx.AsyncClient, write_key: str, status: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, status)
    result = await bulk_enroll(client, write_key, instance_id, contacts(range(3)))
    assert [(e["code"], e["field"]) for e in result["errors"]] == [
        ("INSTANCE_CLOSED", ["instanceId"])
    ]
    assert (await _stored(engine, instance_id))["rows"] == 0


async def test_unknown_and_malformed_instance_ids(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    for instance_id, code in ((random_id(), "NOT_FOUND"), ("x-y-z", "INVALID")):
        result = await bulk_enroll(client, write_key, instance_id, contacts(range(2)))
        assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, ["instanceId"])]
    row = await fetch_one(engine_of(app), "SELECT count(*) AS n FROM enrollments")
    assert row["n"] == 0


async def test_statement_count_does_not_grow_with_the_batch(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "active")
    # Warm up (first use of the key, connection setup) outside the measurement.
    warm = await bulk_enroll(client, write_key, instance_id, contacts(["w"]), BULK_ENROLL_COUNTS)
    assert warm["enrolledCount"] == 1
    counts: dict[int, int] = {}
    for size in (1, 100, 5_000):
        request = contacts(range(size), f"s{size}-")
        with recording(app.state.engine) as statements:
            result = await bulk_enroll(client, write_key, instance_id, request, BULK_ENROLL_COUNTS)
        assert result["errors"] == [], result
        assert result["enrolledCount"] == size, result
        counts[size] = len(statements)
    assert counts[1] == counts[100] == counts[5_000], counts
    assert (await _stored(engine, instance_id))["rows"] == 1 + 1 + 100 + 5_000
