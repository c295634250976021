"""Reading the activity stream that the triggers of migration 0009 append to.

Items are ordered by ``(xid, seq)`` and read only below a horizon: the oldest transaction of
this database still running (or, with none, the next transaction id). Every transaction of
this database below it has finished, so the items below it are final and no item can ever
appear behind a cursor already handed out, whatever order the writers commit in (a sequence
value is taken at insert time but seen only at commit).

Transaction ids are shared by the whole server, so the horizon skips the running ones that
``pg_stat_activity`` shows belong to another database: a long load into another database on
the same server (a benchmark, a restore) would otherwise hold every delivery back until it
ends. What cannot be told apart (a prepared transaction, a subtransaction's own id, another
role's session when ours may not read its ``backend_xid``) counts as this database's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.enums import ActivityKind, ErrorCode
from app.domain.errors import DomainError
from app.observability.sql_observer import as_upkeep

logger = logging.getLogger("campaign_api.live")

CHANNEL = "campaign_activity"
"""What the triggers NOTIFY, with the instance's id as payload."""

HORIZON = """(
SELECT COALESCE(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(c.s) x
     WHERE NOT EXISTS (
         SELECT FROM pg_stat_activity p
         WHERE p.datname <> current_database()
           AND p.backend_xid::text::bigint = x::text::bigint % 4294967296)),
    pg_snapshot_xmax(c.s)::text::bigint)
FROM pg_current_snapshot() c(s)
)"""
"""The first transaction id whose items may not be final yet (see the module's docstring);
``pg_stat_activity`` shows 32-bit ids, the snapshot 64-bit ones."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where an item sits in its instance's stream; ``(0, 0)`` is before the first."""

    xid: int
    seq: int

    @property
    def cursor(self) -> str:
        return f"{self.xid}.{self.seq}"


START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class ActivityItem:
    position: Position
    instance_id: str
    kind: ActivityKind
    at: datetime
    enrollment_id: str | None
    event_id: str | None
    dispatch_id: str | None
    status: str | None


@dataclass(slots=True)
class Batch:
    """An instance's items after a position, oldest first; ``more`` when items remain (the
    limit cut the batch, or items of transactions still younger than the horizon wait)."""

    items: list[ActivityItem]
    more: bool


_ITEMS_AFTER = text(
    f"""
SELECT w.instance_id::text AS watched, a.seq, a.xid, a.kind, a.at,
       a.enrollment_id::text AS enrollment_id, a.event_id::text AS event_id,
       a.dispatch_id::text AS dispatch_id, a.status,
       EXISTS (SELECT 1 FROM instance_activity b
               WHERE b.instance_id = w.instance_id AND b.xid >= h.horizon) AS waiting
FROM unnest(CAST(:ids AS uuid[]), CAST(:xids AS bigint[]), CAST(:seqs AS bigint[]))
     AS w(instance_id, xid, seq)
CROSS JOIN (SELECT {HORIZON} AS horizon) h
LEFT JOIN LATERAL (
    SELECT * FROM instance_activity a
    WHERE a.instance_id = w.instance_id AND (a.xid, a.seq) > (w.xid, w.seq)
      AND a.xid < h.horizon
    ORDER BY a.xid, a.seq
    LIMIT :limit
) a ON true
ORDER BY w.instance_id, a.xid, a.seq
"""
)


async def items_after(
    connection: AsyncConnection, positions: dict[str, Position], limit: int
) -> dict[str, Batch]:
    """Each instance's final items after its position: ONE statement for all of them."""
    ids = list(positions)
    rows = await connection.execute(
        _ITEMS_AFTER,
        {
            "ids": ids,
            "xids": [positions[i].xid for i in ids],
            "seqs": [positions[i].seq for i in ids],
            "limit": limit,
        },
    )
    batches = {i: Batch([], False) for i in ids}
    for row in rows:
        batch = batches[row.watched]
        batch.more = batch.more or row.waiting
        if row.seq is not None:
            batch.items.append(_item(row))
    for batch in batches.values():
        batch.more = batch.more or len(batch.items) >= limit
    return batches


def _item(row: Any) -> ActivityItem:
    return ActivityItem(
        position=Position(row.xid, row.seq),
        instance_id=row.watched,
        kind=ActivityKind(row.kind),
        at=row.at,
        enrollment_id=row.enrollment_id,
        event_id=row.event_id,
        dispatch_id=row.dispatch_id,
        status=row.status,
    )


_TAIL = text(
    f"""
SELECT EXISTS (SELECT 1 FROM campaign_instances WHERE id = CAST(:id AS uuid)) AS known,
       t.xid, t.seq
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT a.xid, a.seq FROM instance_activity a
    WHERE a.instance_id = CAST(:id AS uuid) AND a.xid < {HORIZON}
    ORDER BY a.xid DESC, a.seq DESC LIMIT 1
) t ON true
"""
)


async def tail(connection: AsyncConnection, instance_id: str) -> Position:
    """The position of the instance's last final item: live delivery starts after it."""
    row = (await connection.execute(_TAIL, {"id": instance_id})).one()
    if not row.known:
        raise unknown_instance()
    return START if row.seq is None else Position(row.xid, row.seq)


def unknown_instance() -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, "no campaign instance has this id", ("instanceId",))


def parse_instance_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise unknown_instance() from None


_EVENT_POSITION = text(
    "SELECT xid, seq FROM instance_activity"
    " WHERE event_id = CAST(:event AS uuid) AND instance_id = CAST(:id AS uuid)"
    " ORDER BY xid, seq LIMIT 1"
)


async def position_after(connection: AsyncConnection, instance_id: str, after: str) -> Position:
    """The position ``after`` names: an item's cursor, or the id of one of the instance's
    events (resume after that event)."""
    xid, dot, seq = after.partition(".")
    if dot and xid.isdigit() and seq.isdigit():
        return Position(int(xid), int(seq))
    try:
        event_id = str(uuid.UUID(after))
    except ValueError:
        raise _bad_after() from None
    row = (
        await connection.execute(_EVENT_POSITION, {"event": event_id, "id": instance_id})
    ).first()
    if row is None:
        raise _bad_after()
    return Position(row.xid, row.seq)


def _bad_after() -> DomainError:
    return DomainError(
        ErrorCode.INVALID,
        "'after' must be a cursor this subscription delivered, or the id of one of the"
        " instance's events still in the activity log",
        ("after",),
    )


_PRUNE = text("DELETE FROM instance_activity WHERE at < now() - CAST(:age AS interval)")


async def prune(connection: AsyncConnection, retention: timedelta) -> int:
    """Forget items older than ``retention``: the activity log is bounded by age."""
    result = await connection.execute(_PRUNE, {"age": retention})
    return int(result.rowcount)


PRUNE_EVERY_S = 3600.0


async def prune_periodically(engine: AsyncEngine, retention: timedelta) -> None:
    """Each API process prunes hourly; the DELETEs of several processes are harmless together."""
    as_upkeep()
    while True:
        try:
            async with engine.begin() as connection:
                await prune(connection, retention)
        except Exception:
            logger.exception("pruning the activity log failed; next try in an hour")
        await asyncio.sleep(PRUNE_EVERY_S)
