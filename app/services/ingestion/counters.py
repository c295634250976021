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

from app.domain.enums import EventType

COUNTED_EVENT_TYPES: dict[str, tuple[EventType, ...]] = {
    "total_sent": (
        EventType.SENT,
        EventType.MESSAGE_SENT,
        EventType.VOICE_MESSAGE_SENT,
        EventType.CONNECTION_REQUESTED,
        EventType.PROFILE_VISITED,
    ),
    "total_delivered": (EventType.DELIVERED,),
    "total_opened": (EventType.OPENED,),
    "total_clicked": (EventType.CLICKED,),
    "total_replied": (EventType.REPLIED,),
    "total_bounced": (EventType.BOUNCED,),
    "total_unsubscribed": (EventType.UNSUBSCRIBED, EventType.SPAM_COMPLAINT),
}


def _distinct_outcomes(counter: str) -> str:
    types = ", ".join(f"'{t.value}'" for t in COUNTED_EVENT_TYPES[counter])
    return (
        "count(DISTINCT (e.enrollment_id, e.channel, coalesce(e.step_number, 0)))"
        f" FILTER (WHERE e.event_type IN ({types}))"
    )


RECOMPUTED_COUNTERS_SQL = f"""
    SELECT i.id AS instance_id,
           (SELECT count(*) FROM enrollments n WHERE n.instance_id = i.id) AS total_enrolled,
           {", ".join(f"coalesce(x.{c}, 0) AS {c}" for c in COUNTED_EVENT_TYPES)}
    FROM campaign_instances i
    LEFT JOIN LATERAL (
        SELECT {", ".join(f"{_distinct_outcomes(c)} AS {c}" for c in COUNTED_EVENT_TYPES)}
        FROM campaign_events e
        WHERE e.instance_id = i.id AND e.enrollment_id IS NOT NULL
    ) x ON true
    WHERE i.id = ANY(:ids)
"""


async def rebuild_counters(session: AsyncSession, instance_ids: Sequence[uuid.UUID]) -> None:
    """Set the stored counters of these instances to what their events say, in one statement."""
    columns = ("total_enrolled", *COUNTED_EVENT_TYPES)
    await session.execute(
        text(
            f"UPDATE campaign_instances AS i SET {', '.join(f'{c} = r.{c}' for c in columns)}"
            f" FROM ({RECOMPUTED_COUNTERS_SQL}) AS r WHERE i.id = r.instance_id"
        ),
        {"ids": list(instance_ids)},
    )


COUNTER_COLUMNS = ("total_enrolled", *COUNTED_EVENT_TYPES)

_STORED_COUNTERS_SQL = f"""
    SELECT i.id AS instance_id, i.total_enrolled,
           {
    ", ".join(
        f"i.{c} + coalesce(s.{c.removeprefix('total_')}, 0) AS {c}" for c in COUNTED_EVENT_TYPES
    )
}
    FROM campaign_instances i
    LEFT JOIN (
        SELECT instance_id, {
    ", ".join(
        f"sum({c.removeprefix('total_')}) AS {c.removeprefix('total_')}"
        for c in COUNTED_EVENT_TYPES
    )
}
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


_REBUILD_OUTCOMES = f"""
    INSERT INTO event_outcomes (enrollment_id, instance_id, channel, step_number, counter)
    SELECT DISTINCT e.enrollment_id, e.instance_id, e.channel, coalesce(e.step_number, 0),
           CASE {
    " ".join(
        f"WHEN e.event_type IN ({', '.join(repr(t.value) for t in types)})"
        f" THEN '{counter.removeprefix('total_')}'"
        for counter, types in COUNTED_EVENT_TYPES.items()
    )
} END
    FROM campaign_events e
    WHERE e.enrollment_id IS NOT NULL AND e.event_type IN (
        {", ".join(repr(t.value) for types in COUNTED_EVENT_TYPES.values() for t in types)})
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
