"""Running campaigns: the instance (status, timestamps, counters) and its audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.counters import INSTANCE_COUNTERS
from app.domain.enums import InstanceStatus
from app.domain.limits import FAILURE_REASON_MAX, NAME_MAX
from app.models.base import (
    Base,
    IdMixin,
    TimestampMixin,
    counter_columns,
    json_object_check,
    json_object_column,
    pg_enum,
)


def counter_column(counter: str) -> str:
    """The instance column that stores ``counter`` (one of the vocabulary's)."""
    return f"total_{counter}"


COUNTER_COLUMNS = tuple(counter_column(c) for c in INSTANCE_COUNTERS)
InstanceCounters: Any = counter_columns(COUNTER_COLUMNS)
"""The stored counters, ``total_enrolled`` to ``total_unsubscribed``."""


class CampaignInstance(InstanceCounters, IdMixin, TimestampMixin, Base):
    __tablename__ = "campaign_instances"

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_templates.id", ondelete="RESTRICT"), nullable=False
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[InstanceStatus] = mapped_column(
        pg_enum(InstanceStatus, "instance_status"), server_default=InstanceStatus.DRAFT.value
    )
    provider_config: Mapped[dict[str, Any]] = json_object_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"char_length(btrim(name)) BETWEEN 1 AND {NAME_MAX}", name="name_length"),
        CheckConstraint(json_object_check("provider_config"), name="provider_config_object"),
        *(CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative") for c in COUNTER_COLUMNS),
        CheckConstraint(
            "status IN ('draft', 'failed') OR started_at IS NOT NULL", name="started_at_set"
        ),
        CheckConstraint("status <> 'paused' OR paused_at IS NOT NULL", name="paused_at_set"),
        CheckConstraint(
            "status <> 'completed' OR completed_at IS NOT NULL", name="completed_at_set"
        ),
        CheckConstraint(
            f"status <> 'failed' OR char_length(btrim(coalesce(failure_reason, '')))"
            f" BETWEEN 1 AND {FAILURE_REASON_MAX}",
            name="failure_reason_set",
        ),
        Index(None, "template_id", "created_at", "id"),
        Index(None, "status"),
        Index(None, "created_at", "id"),
    )


class InstanceTransition(IdMixin, TimestampMixin, Base):
    """One row per status change, appended in the transaction that made it."""

    __tablename__ = "instance_transitions"

    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="CASCADE"), nullable=False
    )
    from_status: Mapped[InstanceStatus | None] = mapped_column(
        pg_enum(InstanceStatus, "instance_status"), nullable=True
    )
    to_status: Mapped[InstanceStatus] = mapped_column(pg_enum(InstanceStatus, "instance_status"))
    actor: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

    __table_args__ = (
        CheckConstraint("from_status IS DISTINCT FROM to_status", name="status_changes"),
        Index(None, "instance_id", "at"),
    )
