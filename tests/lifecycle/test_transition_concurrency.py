"""Transitions and bulk enrollments racing on real connections (the app's own pool).

20 pause/resume/complete calls at once on one ACTIVE instance: each answer is a success or
INVALID_TRANSITION, the audit log is one valid chain from ACTIVE that ends at the stored status,
and it has exactly one row per successful call, of the same kinds. 10 overlapping bulkEnroll
calls: no error, no duplicate contact, and every counter agrees with the rows."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    BULK_ENROLL_COUNTS,
    ENROLL_CONTACT,
    bulk_enroll,
    contacts,
    create_template,
    engine_of,
    fetch_one,
    instance_in,
    instance_row,
    mutate,
    person,
    run_transition,
    transition_rows,
)

CALLS = 20
ROUNDS = 2
# What a transition does to the log: (from, to) for each kind of call.
EDGES = {
    "pause": {("active", "paused")},
    "resume": {("paused", "active")},
    "complete": {("active", "completed"), ("paused", "completed")},
}
STAMPED = ("paused", "completed")  # the statuses whose transition sets a *_at column
# The statuses an INVALID_TRANSITION answer may name, by call.
REFUSED_FROM = {
    "pause": {"paused", "completed"},
    "resume": {"active", "completed"},
    "complete": {"completed"},
}


def _kind(edge: tuple[str, str]) -> str:
    [kind] = [k for k, edges in EDGES.items() if edge in edges]
    return kind


def chain_end(start: str, edges: list[tuple[str, str]]) -> str | None:
    """The status reached by applying all ``edges`` one after another in SOME order in which
    each edge starts where the previous one ended, or None when there is no such order."""
    remaining = Counter(edges)

    def walk(state: str) -> str | None:
        if not +remaining:
            return state
        for edge in list(remaining):
            if edge[0] == state and remaining[edge] > 0:
                remaining[edge] -= 1
                end = walk(edge[1])
                remaining[edge] += 1
                if end is not None:
                    return end
        return None

    return walk(start)


def test_chain_end_accepts_chains_and_rejects_gaps() -> None:
    a_p, p_a = ("active", "paused"), ("paused", "active")
    a_c, p_c = ("active", "completed"), ("paused", "completed")
    assert chain_end("active", []) == "active"
    assert chain_end("active", [p_a, a_p, a_p, p_a, a_c]) == "completed"
    assert chain_end("active", [a_p]) == "paused"
    assert chain_end("active", [a_p, a_p]) is None  # two pauses in a row: a lost update
    assert chain_end("active", [a_c, p_c]) is None  # completed twice
    assert chain_end("active", [p_a]) is None


def _mix(rng: random.Random) -> list[str]:
    calls = ["pause"] * 8 + ["resume"] * 8 + ["complete"] * 4
    assert len(calls) == CALLS
    rng.shuffle(calls)
    return calls


async def test_concurrent_pause_resume_complete_leave_a_valid_chain(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 1)])
    for round_ in range(ROUNDS):
        instance_id = await instance_in(client, write_key, engine, template_id, "active")
        log_before = await transition_rows(engine, instance_id)
        calls = _mix(rng)
        results = await asyncio.gather(
            *(run_transition(client, write_key, instance_id, call) for call in calls)
        )
        context = f"seed={seed} round={round_} calls={calls}"

        succeeded: Counter[str] = Counter()
        for call, result in zip(calls, results, strict=True):
            if result["errors"] == []:
                assert result["instance"]["id"] == instance_id, (context, result)
                succeeded[call] += 1
                continue
            assert result["instance"] is None, (context, result)
            [error] = result["errors"]
            assert error["code"] == "INVALID_TRANSITION", (context, result)
            assert error["field"] == ["id"], (context, result)
            named = {s for s in REFUSED_FROM[call] if s in error["message"].lower()}
            assert named, (context, call, error)

        log = await transition_rows(engine, instance_id)
        assert log[: len(log_before)] == log_before, context
        new_rows = log[len(log_before) :]
        assert all(row["actor"] == "test-writer" for row in new_rows), context
        edges = [(row["from_status"], row["to_status"]) for row in new_rows]
        assert sum(succeeded.values()) == len(new_rows), (context, succeeded, edges)
        assert Counter(_kind(edge) for edge in edges) == succeeded, (context, edges)
        assert succeeded["complete"] <= 1, (context, succeeded)

        final = await instance_row(engine, instance_id)
        assert chain_end("active", edges) == final["status"], (context, edges, final["status"])
        # Each transition stamps its column with the time its log row carries.
        at = {to: {r["at"] for r in new_rows if r["to_status"] == to} for to in STAMPED}
        if final["status"] == "paused":
            assert final["paused_at"] in at["paused"], (context, final, at)
        if final["status"] == "active":
            assert final["paused_at"] is None, context  # the last resume cleared it
        assert (final["completed_at"] is not None) == (final["status"] == "completed"), context
        if final["status"] == "completed":
            assert {final["completed_at"]} == at["completed"], (context, final, at)


async def test_concurrent_overlapping_bulk_enrolls_insert_each_contact_once(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 2)])
    instance_id = await instance_in(client, write_key, engine, template_id, "active")
    pool = [f"contact-{n}" for n in range(1_000)]
    batches = [rng.sample(pool, 300) for _ in range(10)]
    union = set().union(*batches)
    assert len(union) < sum(len(b) for b in batches)  # the batches really overlap

    results: list[dict[str, Any]] = await asyncio.gather(
        *(
            bulk_enroll(client, write_key, instance_id, contacts(batch, ""), BULK_ENROLL_COUNTS)
            for batch in batches
        )
    )

    for result in results:
        assert result["errors"] == [], (seed, result)
        assert result["enrolledCount"] + result["skippedCount"] == 300, (seed, result)
    stored = await fetch_one(
        engine,
        "SELECT count(*) AS n, count(DISTINCT contact_id) AS distinct_contacts,"
        " count(*) FILTER (WHERE status = 'active' AND next_action_at IS NOT NULL) AS due"
        " FROM enrollments WHERE instance_id = CAST(:id AS uuid)",
        id=instance_id,
    )
    assert stored["n"] == stored["distinct_contacts"] == len(union), (seed, stored)
    assert stored["due"] == stored["n"], (seed, stored)
    assert sum(r["enrolledCount"] for r in results) == stored["n"], seed
    assert (await instance_row(engine, instance_id))["total_enrolled"] == stored["n"], seed


async def test_concurrent_enrollments_of_one_contact_enroll_it_once(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 2)])
    instance_id = await instance_in(client, write_key, engine, template_id, "active")
    variables = {
        "instanceId": instance_id,
        "input": {"contactId": "same-person", "metadata": person("same-person")},
    }
    results = await asyncio.gather(
        *(mutate(client, write_key, ENROLL_CONTACT, "enrollContact", variables) for _ in range(10))
    )
    won = [r for r in results if r["errors"] == []]
    lost = [r for r in results if r["errors"] != []]
    assert len(won) == 1, results
    winner = won[0]["enrollment"]["id"]
    for result in lost:
        [error] = result["errors"]
        assert (error["code"], error["field"]) == ("ALREADY_ENROLLED", ["input", "contactId"])
        assert winner in error["message"]
    stored = await fetch_one(
        engine,
        "SELECT count(*) AS n FROM enrollments WHERE instance_id = CAST(:id AS uuid)",
        id=instance_id,
    )
    assert stored["n"] == 1
    assert (await instance_row(engine, instance_id))["total_enrolled"] == 1
