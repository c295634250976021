"""One contact's progress through one instance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.addresses import metadata_address_sql
from app.domain.enums import Channel, EnrollmentStatus
from app.domain.limits import CONTACT_ID_MAX
from app.models.base import (
    Base,
    IdMixin,
    TimestampMixin,
    json_object_check,
    json_object_column,
    pg_enum,
)


class Enrollment(IdMixin, TimestampMixin, Base):
    __tablename__ = "enrollments"

    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="RESTRICT"), nullable=False
    )
    contact_id: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[EnrollmentStatus] = mapped_column(
        pg_enum(EnrollmentStatus, "enrollment_status"),
        server_default=EnrollmentStatus.ENROLLED.value,
    )
    current_step: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metadata_: Mapped[dict[str, Any]] = json_object_column("metadata")
    enrolled_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("instance_id", "contact_id"),
        CheckConstraint(
            f"char_length(contact_id) BETWEEN 1 AND {CONTACT_ID_MAX}", name="contact_id_length"
        ),
        CheckConstraint("current_step >= 0", name="current_step_non_negative"),
        CheckConstraint(json_object_check("metadata"), name="metadata_object"),
        CheckConstraint(
            "status <> 'unsubscribed' OR unsubscribed_at IS NOT NULL", name="unsubscribed_at_set"
        ),
        Index(
            "ix_enrollments_next_action_at_due",
            "next_action_at",
            postgresql_where=text("status = 'active' AND next_action_at IS NOT NULL"),
        ),
        Index(None, "instance_id", "created_at", "id"),
        Index(None, "contact_id"),
        Index(None, "status"),
        # A suppression stops every running enrollment of its address, in any instance.
        *(
            Index(
                f"ix_enrollments_running_{channel.value}_address",
                text(metadata_address_sql(channel, "metadata")),
                postgresql_where=text("status IN ('enrolled', 'active', 'paused')"),
            )
            for channel in Channel
        ),
    )
