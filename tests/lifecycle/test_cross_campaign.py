"""The cross-campaign policy (domain.md, "Across campaigns"): a contact open (enrolled, active or
paused) in another instance is enrolled (ALLOW), skipped with ACTIVE_ELSEWHERE naming that
instance (SKIP), or moved (MOVE: its other enrollments removed, the reason recorded, in the same
transaction). The request's policy wins over the template's settings.cross_campaign_policy,
which wins over ALLOW. Everything is read back with SQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from tests.graphql_client import gql
from tests.lifecycle.helpers import (
    CREATE_TEMPLATE,
    ERRORS,
    add_email_step,
    assert_refused,
    contacts,
    create_template,
    engine_of,
    enroll,
    fetch_all,
    fetch_one,
    instance_in,
    instance_row,
    mutate,
    ok,
    person,
)

CLI = Path(sys.executable).parent / "campaign-api"

BULK = f"""
mutation BulkEnroll($instanceId: ID!, $contacts: [EnrollContactInput!]!,
                    $policy: CrossCampaignPolicy) {{
  bulkEnroll(instanceId: $instanceId, contacts: $contacts, policy: $policy) {{
    enrolledCount skippedCount movedCount
    enrollments {{ contactId status }}
    skipped {{ index contactId reason message otherInstanceId }}
    moved {{ index contactId fromInstanceId fromEnrollmentId }}
    {ERRORS}
  }}
}}
"""

ENROLL = f"""
mutation EnrollContact($instanceId: ID!, $input: EnrollContactInput!,
                       $policy: CrossCampaignPolicy) {{
  enrollContact(instanceId: $instanceId, input: $input, policy: $policy) {{
    enrollment {{ id contactId status }}
    moved {{ index contactId fromInstanceId fromEnrollmentId }}
    {ERRORS}
  }}
}}
"""

UPDATE_TEMPLATE = f"""
mutation UpdateTemplate($id: ID!, $input: UpdateTemplateInput!) {{
  updateTemplate(id: $id, input: $input) {{ template {{ id settings }} {ERRORS} }}
}}
"""


async def _bulk(
    client: httpx.AsyncClient,
    key: str,
    instance_id: str,
    people: list[dict[str, Any]],
    policy: str | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"instanceId": instance_id, "contacts": people}
    if policy is not None:
        variables["policy"] = policy
    return await mutate(client, key, BULK, "bulkEnroll", variables)


async def _enroll(
    client: httpx.AsyncClient, key: str, instance_id: str, contact_id: str, policy: str | None
) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "instanceId": instance_id,
        "input": {"contactId": contact_id, "metadata": person(contact_id)},
    }
    if policy is not None:
        variables["policy"] = policy
    return await mutate(client, key, ENROLL, "enrollContact", variables)


async def _template(client: httpx.AsyncClient, key: str, settings: dict[str, Any]) -> str:
    result = await mutate(
        client,
        key,
        CREATE_TEMPLATE,
        "createTemplate",
        {"input": {"name": "Seq", "type": "EMAIL", "settings": settings}},
    )
    template_id: str = ok(result, "template")["id"]
    await add_email_step(client, key, template_id, 1, 4)
    return template_id


async def _enrollments(engine: AsyncEngine, *contact_ids: str) -> list[dict[str, Any]]:
    """Every enrollment of these contacts, with what a move records."""
    return await fetch_all(
        engine,
        "SELECT id::text AS id, instance_id::text AS instance_id, contact_id,"
        " status::text AS status, next_action_at, removal_reason,"
        " moved_to_instance_id::text AS moved_to_instance_id"
        " FROM enrollments WHERE contact_id = ANY(:ids) ORDER BY contact_id, instance_id",
        ids=list(contact_ids),
    )


async def _set_status(engine: AsyncEngine, instance_id: str, contact_id: str, status: str) -> None:
    """Put one enrollment in ``status`` (the per-contact mutations reach paused and removed; a
    provider's reply, a terminal status, is written as the effects would leave it)."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE enrollments SET status = CAST(:status AS enrollment_status),"
                " next_action_at = NULL"
                " WHERE instance_id = CAST(:instance AS uuid) AND contact_id = :contact"
            ),
            {"status": status, "instance": instance_id, "contact": contact_id},
        )


async def _three_instances(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, settings: dict[str, Any] | None = None
) -> tuple[str, str, str]:
    """Instances A (active), B (active, the target) and C (draft) of one template."""
    template_id = (
        await create_template(client, key, "EMAIL", email=[(1, 4)])
        if settings is None
        else await _template(client, key, settings)
    )
    a = await instance_in(client, key, engine, template_id, "active")
    b = await instance_in(client, key, engine, template_id, "active")
    c = await instance_in(client, key, engine, template_id, "draft")
    return a, b, c


async def test_skip_names_the_other_instance_and_changes_nothing_there(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    a, b, c = await _three_instances(client, write_key, engine)
    for contact in ("act", "pau", "rep", "both"):
        await enroll(client, write_key, a, contact)
    await enroll(client, write_key, c, "enr")  # enrolled in a draft: open too
    await enroll(client, write_key, c, "both")
    await enroll(client, write_key, b, "here")
    await enroll(client, write_key, c, "here")
    await _set_status(engine, a, "pau", "paused")
    await _set_status(engine, a, "rep", "replied")  # finished: not open
    before = await _enrollments(engine, "act", "pau", "rep", "enr", "both", "here")

    people = contacts(["act", "new", "pau", "rep", "enr", "both", "here"], prefix="")
    result = await _bulk(client, write_key, b, people, "SKIP")

    assert result["errors"] == [], result
    assert sorted(e["contactId"] for e in result["enrollments"]) == ["new", "rep"]
    assert (result["enrolledCount"], result["movedCount"], result["moved"]) == (2, 0, [])
    skipped = {s["contactId"]: s for s in result["skipped"]}
    assert result["skippedCount"] == len(skipped) == 5, result
    assert {k: (s["index"], s["reason"], s["otherInstanceId"]) for k, s in skipped.items()} == {
        "act": (0, "ACTIVE_ELSEWHERE", a),
        "pau": (2, "ACTIVE_ELSEWHERE", a),
        "enr": (4, "ACTIVE_ELSEWHERE", c),
        "both": (5, "ACTIVE_ELSEWHERE", a),  # the earliest of its open enrollments
        "here": (6, "ALREADY_ENROLLED", None),  # in this instance already: whatever the policy
    }
    assert a in skipped["act"]["message"]
    after = await _enrollments(engine, "act", "pau", "rep", "enr", "both", "here")
    old = {r["id"] for r in before}
    assert [r for r in after if r["id"] in old] == before  # untouched
    assert [(r["instance_id"], r["contact_id"]) for r in after if r["id"] not in old] == [
        (b, "rep")
    ]


async def test_move_removes_the_other_enrollments_with_the_reason_in_one_request(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    a, b, c = await _three_instances(client, write_key, engine)
    for contact in ("x", "y", "done"):
        await enroll(client, write_key, a, contact)
    await enroll(client, write_key, c, "x")
    await _set_status(engine, a, "y", "paused")
    await _set_status(engine, a, "done", "completed")
    counters_before = {i: (await instance_row(engine, i))["total_enrolled"] for i in (a, b, c)}
    ids = {
        (r["instance_id"], r["contact_id"]): r["id"] for r in await _enrollments(engine, "x", "y")
    }

    result = await _bulk(client, write_key, b, contacts(["x", "y", "z", "done"], prefix=""), "MOVE")

    assert (result["errors"], result["skipped"]) == ([], []), result
    assert sorted(e["contactId"] for e in result["enrollments"]) == ["done", "x", "y", "z"]
    moved = sorted(
        (m["contactId"], m["index"], m["fromInstanceId"], m["fromEnrollmentId"])
        for m in result["moved"]
    )
    assert moved == sorted(
        [
            ("x", 0, a, ids[(a, "x")]),
            ("x", 0, c, ids[(c, "x")]),
            ("y", 1, a, ids[(a, "y")]),
        ]
    )
    assert result["movedCount"] == 3
    rows = {(r["instance_id"], r["contact_id"]): r for r in await _enrollments(engine, "x", "y")}
    for instance, contact in ((a, "x"), (c, "x"), (a, "y")):
        row = rows[(instance, contact)]
        assert (row["status"], row["next_action_at"]) == ("removed", None), row
        assert row["removal_reason"] == f"moved to instance {b}", row
        assert row["moved_to_instance_id"] == b, row
    for contact in ("x", "y"):
        assert rows[(b, contact)]["status"] == "active"
        assert rows[(b, contact)]["removal_reason"] is None
    done = await _enrollments(engine, "done")
    assert {r["instance_id"]: r["status"] for r in done} == {a: "completed", b: "active"}
    # Everyone ever enrolled stays counted where they were; B counts its four new ones.
    after = {i: (await instance_row(engine, i))["total_enrolled"] for i in (a, b, c)}
    assert after == counters_before | {b: counters_before[b] + 4}


async def test_the_template_setting_is_the_default_and_the_request_overrides_it(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    a, b, _ = await _three_instances(client, write_key, engine, {"cross_campaign_policy": "skip"})
    for contact in ("p", "q", "r"):
        await enroll(client, write_key, a, contact)

    by_template = await _bulk(client, write_key, b, contacts(["p"], prefix=""))
    assert [s["reason"] for s in by_template["skipped"]] == ["ACTIVE_ELSEWHERE"], by_template
    allowed = await _bulk(client, write_key, b, contacts(["p"], prefix=""), "ALLOW")
    assert (allowed["enrolledCount"], allowed["moved"]) == (1, []), allowed

    refused = await _enroll(client, write_key, b, "q", None)
    error = assert_refused(refused, "enrollment", "ACTIVE_ELSEWHERE", ["input", "contactId"])
    assert a in error["message"]
    assert refused["moved"] == []
    moved = await _enroll(client, write_key, b, "q", "MOVE")
    assert (moved["errors"], moved["enrollment"]["contactId"]) == ([], "q"), moved
    [entry] = moved["moved"]
    assert (entry["contactId"], entry["index"], entry["fromInstanceId"]) == ("q", 0, a)
    read = await gql(
        client,
        write_key,
        "query Read($id: ID!) { enrollment(id: $id) { status removalReason movedToInstanceId } }",
        {"id": entry["fromEnrollmentId"]},
    )
    assert read["data"]["enrollment"] == {
        "status": "REMOVED",
        "removalReason": f"moved to instance {b}",
        "movedToInstanceId": b,
    }, read
    statuses = {
        (r["instance_id"], r["contact_id"]): r["status"]
        for r in await _enrollments(engine, "p", "q", "r")
    }
    assert statuses == {
        (a, "p"): "active",
        (b, "p"): "active",
        (a, "q"): "removed",
        (b, "q"): "active",
        (a, "r"): "active",
    }
    # Without a setting the default is ALLOW.
    plain_a, plain_b, _ = await _three_instances(client, write_key, engine)
    await enroll(client, write_key, plain_a, "s")
    assert (await _enroll(client, write_key, plain_b, "s", None))["errors"] == []


@pytest.mark.parametrize("value", ["SKIP", "later", 3, None, ["move"]])
async def test_an_unknown_template_setting_is_refused_and_nothing_is_written(
    app: Starlette, client: httpx.AsyncClient, write_key: str, value: Any
) -> None:
    engine = engine_of(app)
    created = await mutate(
        client,
        write_key,
        CREATE_TEMPLATE,
        "createTemplate",
        {"input": {"name": "Seq", "type": "EMAIL", "settings": {"cross_campaign_policy": value}}},
    )
    error = assert_refused(
        created, "template", "INVALID", ["input", "settings", "cross_campaign_policy"]
    )
    assert "allow, skip, move" in error["message"]
    assert (await fetch_one(engine, "SELECT count(*) AS n FROM campaign_templates"))["n"] == 0

    template_id = await _template(client, write_key, {"cross_campaign_policy": "move"})
    updated = await mutate(
        client,
        write_key,
        UPDATE_TEMPLATE,
        "updateTemplate",
        {"id": template_id, "input": {"settings": {"cross_campaign_policy": value}}},
    )
    assert_refused(updated, "template", "INVALID", ["input", "settings", "cross_campaign_policy"])
    stored = await fetch_one(engine, "SELECT settings FROM campaign_templates")
    assert stored["settings"] == {"cross_campaign_policy": "move"}


async def test_the_database_refuses_an_unknown_template_setting(app: Starlette) -> None:
    engine = engine_of(app)
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError, match="ck_campaign_templates_cross_campaign_policy"):
            await connection.execute(
                text(
                    "INSERT INTO campaign_templates (name, type, settings)"
                    """ VALUES ('t', 'email', '{"cross_campaign_policy": "MOVE"}')"""
                )
            )


async def test_an_unknown_policy_is_a_validation_error_and_writes_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    a, b, _ = await _three_instances(client, write_key, engine)
    await enroll(client, write_key, a, "u")
    body = await gql(
        client,
        write_key,
        BULK,
        {"instanceId": b, "contacts": contacts(["u", "v"], prefix=""), "policy": "REPLACE"},
    )
    assert body.get("data") is None, body
    assert "REPLACE" in body["errors"][0]["message"], body
    assert [r["instance_id"] for r in await _enrollments(engine, "u", "v")] == [a]


async def test_the_statements_do_not_grow_with_the_contacts(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """Set-based: the same number of statements for 2 and for 2,000 contacts under SKIP and
    MOVE, half of them open in other instances."""
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 4)])
    others = [await instance_in(client, write_key, engine, template_id, "active") for _ in range(2)]
    counts: dict[tuple[str, int], int] = {}
    for policy in ("SKIP", "MOVE"):
        for size in (2, 2_000):
            target = await instance_in(client, write_key, engine, template_id, "active")
            people = contacts(range(size), prefix=f"{policy}-{size}-")
            for n, other in enumerate(others):
                half = people[n : size // 2 : 2]
                ok_result = await _bulk(client, write_key, other, half, "ALLOW")
                assert ok_result["enrolledCount"] == len(half), ok_result
            with recording(engine) as statements:
                result = await _bulk(client, write_key, target, people, policy)
            assert result["errors"] == [], result
            assert len(result["skipped"]) + result["enrolledCount"] == size
            assert len(result["skipped" if policy == "SKIP" else "moved"]) == size // 2
            counts[(policy, size)] = len(statements)
    assert counts[("SKIP", 2)] == counts[("SKIP", 2_000)], counts
    assert counts[("MOVE", 2)] == counts[("MOVE", 2_000)], counts


async def test_the_open_enrollment_index_answers_the_lookup(app: Starlette) -> None:
    """The look-up's predicate matches the partial index, so the planner can use it."""
    rows = await fetch_all(
        engine_of(app),
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_enrollments_contact_id_open'",
    )
    assert len(rows) == 1
    definition = rows[0]["indexdef"]
    assert "(contact_id)" in definition
    for status in ("enrolled", "active", "paused"):
        assert f"'{status}'" in definition, definition


async def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    env["DATABASE_URL"] = database_url
    env.pop("PYTHONWARNINGS", None)
    return await asyncio.to_thread(
        subprocess.run,
        [str(CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_counters_check_finds_nothing_after_a_move(
    app: Starlette, client: httpx.AsyncClient, write_key: str, database_url: str
) -> None:
    """A move leaves every counter equal to what the events say (``counters check``)."""
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 4), (2, 4)])
    a, b, c = [
        await instance_in(client, write_key, engine, template_id, status)
        for status in ("active", "active", "draft")
    ]
    record = """
    mutation Record($input: RecordEventInput!) { recordEvent(input: $input) { errors { code } } }
    """
    for contact in ("m1", "m2", "m3"):
        enrollment = await enroll(client, write_key, a, contact)
        for event_type in ("SENT", "OPENED"):
            answer = await mutate(
                client,
                write_key,
                record,
                "recordEvent",
                {
                    "input": {
                        "enrollmentId": enrollment["id"],
                        "eventType": event_type,
                        "stepNumber": 1,
                    }
                },
            )
            assert answer["errors"] == [], answer
    await enroll(client, write_key, c, "m2")
    result = await _bulk(client, write_key, b, contacts(["m1", "m2", "m3"], prefix=""), "MOVE")
    assert result["movedCount"] == 4, result

    check = await _cli(database_url, "counters", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "counters match the events" in check.stdout


async def test_csv_enroll_reports_skipped_and_moved_lines(
    app: Starlette, client: httpx.AsyncClient, write_key: str, database_url: str, tmp_path: Path
) -> None:
    engine = engine_of(app)
    a, b, c = await _three_instances(client, write_key, engine)
    for contact in ("k1", "k3"):
        await enroll(client, write_key, a, contact)
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "contact_id,first_name,email\n"
        "k1,Kim,k1@example.com\n"
        "k2,Kai,k2@example.com\n"
        "k3,Kay,k3@example.com\n",
        encoding="utf-8",
    )

    bad = await _cli(database_url, "enroll", b, str(csv_file), "--quiet", "--policy", "replace")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "unknown policy 'replace': use one of allow, skip, move" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert [r["instance_id"] for r in await _enrollments(engine, "k1", "k2", "k3")] == [a, a]

    skip = await _cli(database_url, "enroll", b, str(csv_file), "--quiet", "--policy", "skip")
    assert skip.returncode == 0, skip.stdout + skip.stderr
    assert skip.stdout.splitlines() == [
        "enrolled 1, skipped 2, rejected 0, moved 0",
        f"  line 2: ACTIVE_ELSEWHERE: open in instance {a}",
        f"  line 4: ACTIVE_ELSEWHERE: open in instance {a}",
    ]

    move = await _cli(database_url, "enroll", c, str(csv_file), "--quiet", "--policy", "MOVE")
    assert move.returncode == 0, move.stdout + move.stderr
    removed = {
        (r["instance_id"], r["contact_id"]): r["id"]
        for r in await _enrollments(engine, "k1", "k2", "k3")
        if r["status"] == "removed"
    }
    assert set(removed) == {(a, "k1"), (b, "k2"), (a, "k3")}
    assert move.stdout.splitlines() == [
        "enrolled 3, skipped 0, rejected 0, moved 3",
        f"  line 2: MOVED: from instance {a} (enrollment {removed[(a, 'k1')]} removed)",
        f"  line 3: MOVED: from instance {b} (enrollment {removed[(b, 'k2')]} removed)",
        f"  line 4: MOVED: from instance {a} (enrollment {removed[(a, 'k3')]} removed)",
    ]
