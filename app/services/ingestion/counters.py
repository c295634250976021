"""Instance counters as domain.md defines them, recomputed from the stored events.

Each counter counts unique outcomes: ``COUNT(DISTINCT (enrollment_id, channel, step_number))``
over the events of its types, a missing step number counting as step 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.counters import EVENT_TYPES_OF, OUTCOME_COUNTERS
from app.models.instances import COUNTER_COLUMNS, counter_column


def _types(counter: str) -> str:
    """SQL: the event types ``counter`` counts, as a list for IN."""
    return ", ".join(f"'{t.value}'" for t in EVENT_TYPES_OF[counter])


def _distinct_outcomes(counter: str) -> str:
    return (
        "count(DISTINCT (e.enrollment_id, e.channel, coalesce(e.step_number, 0)))"
        f" FILTER (WHERE e.event_type IN ({_types(counter)})) AS {counter_column(counter)}"
    )


def _each_outcome_counter(fragment: str) -> str:
    """SQL: ``fragment`` once per outcome counter, with ``{c}`` its name and ``{column}`` its
    instance column."""
    return ", ".join(fragment.format(c=c, column=counter_column(c)) for c in OUTCOME_COUNTERS)


RECOMPUTED_COUNTERS_SQL = f"""
    SELECT i.id AS instance_id,
           (SELECT count(*) FROM enrollments n WHERE n.instance_id = i.id) AS total_enrolled,
           {_each_outcome_counter("coalesce(x.{column}, 0) AS {column}")}
    FROM campaign_instances i
    LEFT JOIN LATERAL (
        SELECT {", ".join(_distinct_outcomes(c) for c in OUTCOME_COUNTERS)}
        FROM campaign_events e
        WHERE e.instance_id = i.id AND e.enrollment_id IS NOT NULL
    ) x ON true
    WHERE i.id = ANY(:ids)
"""


async def rebuild_counters(session: AsyncSession, instance_ids: Sequence[uuid.UUID]) -> None:
    """Set the stored counters of these instances to what their events say, in one statement."""
    await session.execute(
        text(
            "UPDATE campaign_instances AS i"
            f" SET {', '.join(f'{c} = r.{c}' for c in COUNTER_COLUMNS)}"
            f" FROM ({RECOMPUTED_COUNTERS_SQL}) AS r WHERE i.id = r.instance_id"
        ),
        {"ids": list(instance_ids)},
    )


_STORED_COUNTERS_SQL = f"""
    SELECT i.id AS instance_id, i.total_enrolled,
           {_each_outcome_counter("i.{column} + coalesce(s.{c}, 0) AS {column}")}
    FROM campaign_instances i
    LEFT JOIN (
        SELECT instance_id, {_each_outcome_counter("sum({c}) AS {c}")}
        FROM instance_counter_shards GROUP BY instance_id
    ) s ON s.instance_id = i.id
"""


@dataclass(frozen=True, slots=True)
class CounterDifference:
    instance_id: uuid.UUID
    counter: str
    stored: int
    recomputed: int


async def check_counters(session: AsyncSession) -> list[CounterDifference]:
    """Every counter whose stored value (column plus shards) differs from the events."""
    stored = {row.instance_id: row for row in await session.execute(text(_STORED_COUNTERS_SQL))}
    recomputed = await session.execute(text(RECOMPUTED_COUNTERS_SQL), {"ids": list(stored)})
    differences = []
    for row in recomputed:
        for counter in COUNTER_COLUMNS:
            have, want = getattr(stored[row.instance_id], counter), getattr(row, counter)
            if have != want:
                differences.append(CounterDifference(row.instance_id, counter, have, want))
    return sorted(differences, key=lambda d: (str(d.instance_id), d.counter))


_COUNTER_OF_EVENT = " ".join(
    f"WHEN e.event_type IN ({_types(c)}) THEN '{c}'" for c in OUTCOME_COUNTERS
)
_REBUILD_OUTCOMES = f"""
    INSERT INTO event_outcomes (enrollment_id, instance_id, channel, step_number, counter)
    SELECT DISTINCT e.enrollment_id, e.instance_id, e.channel, coalesce(e.step_number, 0),
           CASE {_COUNTER_OF_EVENT} END
    FROM campaign_events e
    WHERE e.enrollment_id IS NOT NULL AND e.event_type IN (
        {", ".join(_types(c) for c in OUTCOME_COUNTERS)})
      AND (CAST(:ids AS uuid[]) IS NULL OR e.instance_id = ANY(CAST(:ids AS uuid[])))
    ON CONFLICT DO NOTHING
"""


async def rebuild_outcomes(
    session: AsyncSession, instance_ids: Sequence[uuid.UUID] | None = None
) -> None:
    """Record the unique outcomes of stored events (all instances when ``instance_ids`` is None),
    so that later events count only what is new."""
    ids = None if instance_ids is None else list(instance_ids)
    await session.execute(text(_REBUILD_OUTCOMES), {"ids": ids})


async def fix_counters(session: AsyncSession) -> None:
    """Rebuild outcomes and counters from the events, folding the shards back into the columns.

    Both bookkeeping tables are locked first (the order ingestion takes them in), so webhooks
    arriving meanwhile wait instead of being counted twice or lost.
    """
    await session.execute(
        text("LOCK TABLE event_outcomes, instance_counter_shards IN EXCLUSIVE MODE")
    )
    await session.execute(text("DELETE FROM event_outcomes"))
    await rebuild_outcomes(session)
    ids = list(await session.scalars(text("SELECT id FROM campaign_instances")))
    await rebuild_counters(session, ids)
    await session.execute(text("DELETE FROM instance_counter_shards"))
