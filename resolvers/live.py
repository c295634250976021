"""What the live-updates hub loads for each announced change, through the batched loaders:
one statement for the new items of every notified instance, then one per kind of row they
name (events, enrollments, dispatches, instances, counter shards), shared by every subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.counters import INSTANCE_COUNTERS
from app.domain.enums import ActivityKind
from app.models.instances import counter_column
from app.services.analytics import Metrics
from app.services.live.activity import ActivityItem, Position, items_after, tail
from app.services.live.hub import Load, Loaded, Tail
from resolvers.loaders import Loaders, RequestDatabase


@dataclass(frozen=True, slots=True, weakref_slot=True)
class LiveActivity:
    """One item as delivered: the rows it names were loaded once for all subscribers (and
    its execution is shared by them: resolvers/shared_events.py keys results by it)."""

    position: Position
    kind: ActivityKind
    at: datetime
    enrollment: Any
    event: Any
    dispatch: Any
    enrollment_status: str | None
    metrics: Metrics
    instance: Any
    pending: Metrics
    """The instance's counter increments still in shards (part of ``metrics``)."""

    @property
    def cursor(self) -> str:
        return self.position.cursor

    def prime(self, loaders: Loaders) -> None:
        """Hand the rows to a message's fresh loaders, so nested fields reuse them."""
        prime_instance(loaders, self.instance, self.pending)
        if self.enrollment is not None:
            loaders.enrollment_by_id.prime(self.enrollment.id, self.enrollment)
        if self.event is not None:
            loaders.event_by_id.prime(self.event.id, self.event)
        if self.dispatch is not None:
            loaders.dispatch_by_id.prime(self.dispatch.id, self.dispatch)


def prime_instance(loaders: Loaders, instance: Any, pending: Metrics) -> None:
    """The instance row and its counters' pending increments, as the hub loaded them."""
    loaders.instance_by_id.prime(instance.id, instance)
    loaders.shard_totals_by_instance_id.prime(instance.id, pending)


def _stored(instance: Any) -> Metrics:
    return Metrics(**{c: getattr(instance, counter_column(c)) for c in INSTANCE_COUNTERS})


@asynccontextmanager
async def _reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one read statement, outside any transaction: the statement's own
    snapshot is the one that counts, and BEGIN and ROLLBACK would be two more round trips
    for every look at the log."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


def hub_load(engine: AsyncEngine, limit: int) -> Load:
    async def load(positions: dict[str, Position], snapshots: set[str]) -> dict[str, Loaded[Any]]:
        async with _reading(engine) as connection:
            batches = await items_after(connection, positions, limit)
        # A look that found nothing new (items held behind a running transaction) costs
        # this one statement; the rows are loaded only for news.
        wanted = {i: b for i, b in batches.items() if b.items or i in snapshots}
        loaded: dict[str, Loaded[Any]] = {
            i: Loaded([], None, b.more) for i, b in batches.items() if i not in wanted
        }
        if not wanted:
            return loaded
        db = RequestDatabase(engine)
        try:
            return loaded | await _resolve(Loaders(db), wanted)
        finally:
            await db.close()

    return load


def hub_tail(engine: AsyncEngine) -> Tail:
    async def instance_tail(instance_id: str) -> Position:
        async with _reading(engine) as connection:
            return await tail(connection, instance_id)

    return instance_tail


async def _many(loader: Any, keys: set[str]) -> dict[str, Any]:
    if not keys:
        return {}
    ordered = list(keys)
    return dict(zip(ordered, await loader.load_many(ordered), strict=True))


async def _resolve(loaders: Loaders, batches: dict[str, Any]) -> dict[str, Loaded[Any]]:
    items: list[ActivityItem] = [item for batch in batches.values() for item in batch.items]
    ids = list(batches)
    instances, pending, events, enrollments, dispatches = await asyncio.gather(
        loaders.instance_by_id.load_many(ids),
        loaders.shard_totals_by_instance_id.load_many(ids),
        _many(loaders.event_by_id, {i.event_id for i in items if i.event_id}),
        _many(loaders.enrollment_by_id, {i.enrollment_id for i in items if i.enrollment_id}),
        _many(loaders.dispatch_by_id, {i.dispatch_id for i in items if i.dispatch_id}),
    )
    loaded: dict[str, Loaded[Any]] = {}
    for instance_id, instance, waiting in zip(ids, instances, pending, strict=True):
        if instance is None:
            continue
        metrics = _stored(instance) + waiting
        batch = batches[instance_id]
        delivered = [
            LiveActivity(
                position=item.position,
                kind=item.kind,
                at=item.at,
                enrollment=enrollments.get(item.enrollment_id or ""),
                event=events.get(item.event_id or ""),
                dispatch=dispatches.get(item.dispatch_id or ""),
                enrollment_status=(
                    item.status if item.kind is ActivityKind.ENROLLMENT_STATUS else None
                ),
                metrics=metrics,
                instance=instance,
                pending=waiting,
            )
            for item in batch.items
        ]
        loaded[instance_id] = Loaded(delivered, InstanceSnapshot(instance, waiting), batch.more)
    return loaded


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """The instance as an instanceStatus subscriber gets it, with its pending counters."""

    instance: Any
    pending: Metrics

    def prime(self, loaders: Loaders) -> None:
        prime_instance(loaders, self.instance, self.pending)
