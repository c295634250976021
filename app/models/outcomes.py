"""What the counters count, kept so that concurrent ingestion never queues on one row.

``event_outcomes`` holds one row per unique outcome (enrollment, channel, step, counter): a
new event bumps a counter only when its outcome row is new. The increments land in one of
several ``instance_counter_shards`` rows per instance, picked per transaction, so concurrent
webhooks for one busy campaign rarely wait for each other. An instance's counter is its stored
column plus the sum of its shards (``campaign-api counters check --fix`` folds shards back).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.counters import OUTCOME_COUNTERS
from app.domain.enums import Channel
from app.models.base import Base, TimestampMixin, counter_columns, pg_enum

SHARDS = 8
ShardCounters: Any = counter_columns(OUTCOME_COUNTERS)
"""A shard's increments, one column per outcome counter, named as the counter."""


class EventOutcome(TimestampMixin, Base):
    __tablename__ = "event_outcomes"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT"), primary_key=True
    )
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"), primary_key=True)
    step_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[str] = mapped_column(Text, primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="RESTRICT"), nullable=False
    )

    __table_args__ = (
        CheckConstraint("step_number >= 0", name="step_number_non_negative"),
        CheckConstraint(
            "counter IN (" + ", ".join(f"'{c}'" for c in OUTCOME_COUNTERS) + ")",
            name="counter_known",
        ),
        Index(None, "instance_id", "counter"),
    )


class InstanceCounterShard(ShardCounters, TimestampMixin, Base):
    __tablename__ = "instance_counter_shards"

    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)

    __table_args__ = (
        CheckConstraint(f"shard BETWEEN 0 AND {SHARDS - 1}", name="shard_range"),
        *(CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative") for c in OUTCOME_COUNTERS),
    )
