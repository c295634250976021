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

from app.domain.enums import OPEN_ENROLLMENT_STATUSES, Channel, EnrollmentStatus
from app.domain.limits import CONTACT_ID_MAX, REMOVAL_REASON_MAX
from app.models.base import (
    Base,
    IdMixin,
    TimestampMixin,
    address_constraints,
    json_object_check,
    json_object_column,
    pg_enum,
)
from app.models.replies import sentiment_check

OPEN_ENROLLMENT_SQL = (
    "status IN (" + ", ".join(f"'{s.value}'" for s in OPEN_ENROLLMENT_STATUSES) + ")"
)
"""The enrollments that still hold their contact: what "active elsewhere" looks for (a partial
index keeps that look-up small however many finished enrollments pile up)."""

ERASED_CONTACT_PREFIX = "erased:"
ERASED_HOLDS_NOTHING = (
    "erased_at IS NULL OR (metadata = '{}'::jsonb"
    f" AND contact_id ~ '^{ERASED_CONTACT_PREFIX}[0-9a-f]{{64}}$')"
)
"""An erased enrollment keeps no metadata, and only the SHA-256 of its contact id."""


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
    removal_reason: Mapped[str | None] = mapped_column(Text)
    """Why a removed enrollment was removed, when the API knows (a cross-campaign move)."""
    moved_to_instance_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="RESTRICT")
    )
    """The instance a MOVE enrolled the contact in instead of this one."""
    sentiment: Mapped[str | None] = mapped_column(Text)
    """The sentiment of its latest reply (by ``occurred_at``), kept by
    ``refresh_reply_sentiments``."""
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set when the contact was erased: its metadata is gone and its contact id is only a
    hash; events that arrive for it later are stored without their metadata."""

    __table_args__ = (
        UniqueConstraint("instance_id", "contact_id"),
        CheckConstraint(sentiment_check("sentiment"), name="sentiment_known"),
        CheckConstraint(
            f"char_length(contact_id) BETWEEN 1 AND {CONTACT_ID_MAX}", name="contact_id_length"
        ),
        CheckConstraint("current_step >= 0", name="current_step_non_negative"),
        CheckConstraint(json_object_check("metadata"), name="metadata_object"),
        CheckConstraint(
            "status <> 'unsubscribed' OR unsubscribed_at IS NOT NULL", name="unsubscribed_at_set"
        ),
        CheckConstraint(
            "removal_reason IS NULL OR (status = 'removed'"
            f" AND char_length(removal_reason) BETWEEN 1 AND {REMOVAL_REASON_MAX})",
            name="removal_reason_when_removed",
        ),
        CheckConstraint(
            "moved_to_instance_id IS NULL OR (status = 'removed'"
            " AND moved_to_instance_id <> instance_id AND removal_reason IS NOT NULL)",
            name="moved_when_removed",
        ),
        Index(
            "ix_enrollments_contact_id_open",
            "contact_id",
            postgresql_where=text(OPEN_ENROLLMENT_SQL),
        ),
        CheckConstraint(ERASED_HOLDS_NOTHING, name="erased_holds_nothing"),
        Index(
            "ix_enrollments_next_action_at_due",
            "next_action_at",
            postgresql_where=text("status = 'active' AND next_action_at IS NOT NULL"),
        ),
        Index(None, "instance_id", "created_at", "id"),
        Index(None, "contact_id"),
        Index(None, "status"),
    )


class EnrollmentAddress(TimestampMixin, Base):
    """Where an enrollment's touches go, normalized, one row per channel, written with the
    enrollment and never updated: a suppression finds every enrollment of an address through
    it, without an index on ``enrollments`` that every status change would have to maintain."""

    __tablename__ = "enrollment_addresses"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT"), primary_key=True
    )
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"), primary_key=True)
    address: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        *address_constraints(),
        Index(None, "channel", "address"),
    )
