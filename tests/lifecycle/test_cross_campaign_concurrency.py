"""Two bulkEnroll calls under MOVE racing on real connections (the app's own pool), moving the
same contacts in opposite directions: A→B and B→A, plus contacts both want out of a third
instance C. Every round: no deadlock or other error, each contact open in exactly one instance,
every removal names the instance it moved to, and the counters agree with the events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.services.ingestion.counters import check_counters
from tests.lifecycle.helpers import (
    BULK_ENROLL_COUNTS,
    ERRORS,
    bulk_enroll,
    contacts,
    create_template,
    engine_of,
    fetch_all,
    instance_in,
    mutate,
)

ROUNDS = 4
PER_GROUP = 150

MOVE = f"""
mutation Move($instanceId: ID!, $contacts: [EnrollContactInput!]!) {{
  bulkEnroll(instanceId: $instanceId, contacts: $contacts, policy: MOVE) {{
    enrolledCount movedCount moved {{ contactId fromInstanceId }} {ERRORS}
  }}
}}
"""


async def test_opposite_moves_never_deadlock_and_leave_each_contact_in_one_instance(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 4)])
    for round_number in range(ROUNDS):
        a, b, c = [
            await instance_in(client, write_key, engine, template_id, "active") for _ in range(3)
        ]
        groups = {
            home: contacts(range(PER_GROUP), prefix=f"r{round_number}-{name}-")
            for name, home in (("a", a), ("b", b), ("c", c))
        }
        for home, people in groups.items():
            setup = await bulk_enroll(client, write_key, home, people, BULK_ENROLL_COUNTS)
            assert setup["enrolledCount"] == PER_GROUP, setup
        # Interleaved, and in opposite orders, so that each call wants rows the other has.
        everyone = [p for trio in zip(*groups.values(), strict=True) for p in trio]

        def move(target: str, people: list[dict[str, Any]]) -> Any:
            return mutate(
                client, write_key, MOVE, "bulkEnroll", {"instanceId": target, "contacts": people}
            )

        into_b, into_a = await asyncio.gather(move(b, everyone), move(a, everyone[::-1]))

        for result in (into_b, into_a):
            assert result["errors"] == [], result
        rows = await fetch_all(
            engine,
            "SELECT contact_id, instance_id::text AS instance_id, status::text AS status,"
            " moved_to_instance_id::text AS moved_to FROM enrollments"
            " WHERE instance_id = ANY(CAST(:ids AS uuid[]))",
            ids=[a, b, c],
        )
        open_in: dict[str, list[str]] = {}
        for row in rows:
            if row["status"] in ("enrolled", "active", "paused"):
                open_in.setdefault(row["contact_id"], []).append(row["instance_id"])
            else:
                assert row["status"] == "removed", row
                assert row["moved_to"] in (a, b), row
        assert len(open_in) == 3 * PER_GROUP
        assert all(len(where) == 1 for where in open_in.values()), {
            k: v for k, v in open_in.items() if len(v) != 1
        }
        assert {where[0] for where in open_in.values()} <= {a, b}  # C emptied
        removed = sum(1 for row in rows if row["status"] == "removed")
        assert into_b["movedCount"] + into_a["movedCount"] == removed
        for target, result in ((a, into_a), (b, into_b)):  # its own group, plus what it took
            assert sum(1 for r in rows if r["instance_id"] == target) == (
                PER_GROUP + result["enrolledCount"]
            )
    async with sessionmaker() as session:
        assert await check_counters(session) == []
