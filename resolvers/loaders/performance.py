"""Per-step outcome counts of many instances in one aggregate statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiodataloader import DataLoader

from app.domain.counters import EVENT_TYPES_OF, OUTCOME_COUNTERS
from app.services.analytics import (
    NEGATIVE_REPLY_SQL,
    POSITIVE_REPLY_SQL,
    Metrics,
    ReplySentimentFigures,
)
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.sql import typed


@dataclass(frozen=True, slots=True)
class StepFigures:
    channel: str
    step_number: int
    metrics: Metrics
    replies: ReplySentimentFigures


def _unique_outcomes(counter: str) -> str:
    """Within one (instance, channel, step) group, distinct enrollments are distinct outcomes."""
    types = ", ".join(f"'{t.value}'" for t in EVENT_TYPES_OF[counter])
    return f"count(DISTINCT e.enrollment_id) FILTER (WHERE e.event_type IN ({types})) AS {counter}"


_STEP_FIGURES = typed(
    "SELECT e.instance_id::text AS instance_id, e.channel::text AS channel,"
    " coalesce(e.step_number, 0) AS step_number, "
    + ", ".join(_unique_outcomes(c) for c in OUTCOME_COUNTERS)
    + f", count(DISTINCT e.enrollment_id) FILTER (WHERE {POSITIVE_REPLY_SQL}) AS positive_replies"
    + f", count(DISTINCT e.enrollment_id) FILTER (WHERE {NEGATIVE_REPLY_SQL}) AS negative_replies"
    + " FROM campaign_events e"
    " WHERE e.instance_id = ANY(CAST(:ids AS uuid[])) AND e.enrollment_id IS NOT NULL"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


class StepFiguresByInstanceLoader(DataLoader):  # type: ignore[misc]
    """Keys are ``(instance_id, total_enrolled)``: the audience size is each step's ``enrolled``."""

    def __init__(self, db: RequestDatabase) -> None:
        super().__init__()
        self._db = db

    async def batch_load_fn(self, keys: Sequence[tuple[str, int]]) -> list[list[StepFigures]]:
        rows = await self._db.fetch(_STEP_FIGURES, {"ids": [k[0] for k in keys]})
        by_instance: dict[str, list[StepFigures]] = defaultdict(list)
        enrolled = dict(keys)
        for row in rows:
            by_instance[row.instance_id].append(
                StepFigures(
                    channel=row.channel,
                    step_number=row.step_number,
                    metrics=Metrics(
                        enrolled=enrolled[row.instance_id],
                        **{c: getattr(row, c) for c in OUTCOME_COUNTERS},
                    ),
                    replies=ReplySentimentFigures(
                        row.positive_replies, row.negative_replies, row.replied
                    ),
                )
            )
        return [by_instance.get(instance_id, []) for instance_id, _ in keys]
