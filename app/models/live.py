"""The instance activity stream that live updates replay: appended by database triggers only.

Written by the statement-level triggers of migration 0009 (every write path announces itself),
read by ``app.services.live.activity``; rows are never updated, and are pruned by age.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

XID_DEFAULT = "(pg_current_xact_id()::text)::bigint"
"""The writing transaction's id (an xid8; as bigint, which it never outgrows)."""


class InstanceActivity(Base):
    __tablename__ = "instance_activity"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    xid: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text(XID_DEFAULT))
    instance_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    enrollment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dispatch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str | None] = mapped_column(Text)

    # No primary key in the database (one index fewer per appended row); the ORM needs one.
    __mapper_args__ = {"primary_key": [seq]}

    __table_args__ = (
        CheckConstraint("kind IN ('event', 'enrollment_status', 'dispatch')", name="kind_known"),
        CheckConstraint(
            "(kind = 'event' AND event_id IS NOT NULL)"
            " OR (kind = 'enrollment_status' AND enrollment_id IS NOT NULL"
            " AND status IS NOT NULL)"
            " OR (kind = 'dispatch' AND dispatch_id IS NOT NULL AND status IS NOT NULL)",
            name="kind_fields",
        ),
        Index("ix_instance_activity_instance_position", "instance_id", "xid", "seq"),
        Index("ix_instance_activity_at", "at", postgresql_using="brin"),
    )
