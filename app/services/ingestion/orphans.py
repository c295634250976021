"""Orphaned events: attach them once their enrollment exists, or purge them after retention."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.driver import in_session_transaction
from app.models.outcomes import SHARDS
from app.services.ingestion.effects import with_effects

_RELINK = """
    WITH candidates AS (
        SELECT e.id, n.id AS enrollment_id, n.instance_id
        FROM campaign_events e
        JOIN enrollments n
          ON e.metadata->>'unresolved_enrollment_ref'
             ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         AND n.id = CAST(e.metadata->>'unresolved_enrollment_ref' AS uuid)
        WHERE e.enrollment_id IS NULL
        ORDER BY e.id
        FOR UPDATE OF e
    )
    UPDATE campaign_events e
    SET enrollment_id = c.enrollment_id, instance_id = c.instance_id,
        metadata = e.metadata - 'unresolved_enrollment_ref'
    FROM candidates c
    WHERE e.id = c.id
    RETURNING e.id, e.enrollment_id, e.instance_id, e.event_type::text AS event_type,
              e.channel::text AS channel, e.provider::text AS provider, e.provider_event_id,
              e.step_number, e.occurred_at, e.metadata ->> 'Type' AS bounce_type
"""
_RELINK_APPLIED = with_effects(_RELINK, shard_parameter=1, returning="count(*) AS relinked")


async def relink_orphans(session: AsyncSession) -> int:
    """Attach every orphan whose enrollment now exists and apply its effects, as if it had
    just arrived (counters count it only if its outcome is new)."""
    db = await in_session_transaction(session)
    rows = await db.fetch(_RELINK_APPLIED, random.randrange(SHARDS))
    return int(rows[0]["relinked"])


async def purge_orphans(session: AsyncSession, older_than: timedelta) -> int:
    """Delete orphans stored longer ago than ``older_than``."""
    result = await session.execute(
        text(
            "DELETE FROM campaign_events WHERE enrollment_id IS NULL"
            " AND created_at < now() - make_interval(secs => :seconds)"
        ),
        {"seconds": older_than.total_seconds()},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
