"""The counter increments waiting in shards, for many instances in one GROUP BY."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from app.domain.counters import OUTCOME_COUNTERS
from app.services.analytics import Metrics
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.sql import typed

_SHARD_TOTALS = typed(
    "SELECT instance_id::text AS instance_id, "
    + ", ".join(f"sum({c})::int AS {c}" for c in OUTCOME_COUNTERS)
    + " FROM instance_counter_shards WHERE instance_id = ANY(CAST(:ids AS uuid[]))"
    " GROUP BY instance_id"
)


class ShardTotalsByInstanceLoader(DataLoader):  # type: ignore[misc]
    def __init__(self, db: RequestDatabase) -> None:
        super().__init__()
        self._db = db

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Metrics]:
        rows = await self._db.fetch(_SHARD_TOTALS, {"ids": list(keys)})
        found = {
            row.instance_id: Metrics(**{c: getattr(row, c) for c in OUTCOME_COUNTERS})
            for row in rows
        }
        return [found.get(key, Metrics()) for key in keys]
