"""Instance counters as domain.md defines them, recomputed from the stored events.

Each counter counts unique outcomes: ``COUNT(DISTINCT (enrollment_id, channel, step_number))``
over the events of its types, a missing step number counting as step 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

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
