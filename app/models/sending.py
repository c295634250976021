"""What the sender keeps: one dispatch per touch, the suppression list, and each instance's
touches per local day (its daily limit)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import Channel, DispatchStatus, Provider, SuppressionReason
from app.domain.limits import ERROR_CODE_MAX, ERROR_MESSAGE_MAX
from app.models.base import Base, IdMixin, TimestampMixin, address_constraints, pg_enum


class Dispatch(IdMixin, TimestampMixin, Base):
    """One touch (enrollment, channel, step): the database's word that it leaves at most once."""

    __tablename__ = "dispatches"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT"), nullable=False
    )
    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="RESTRICT"), nullable=False
    )
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"))
    step_number: Mapped[int] = mapped_column(Integer, nullable=False)
    provider: Mapped[Provider] = mapped_column(pg_enum(Provider, "provider"))
    status: Mapped[DispatchStatus] = mapped_column(
        pg_enum(DispatchStatus, "dispatch_status"), server_default=DispatchStatus.QUEUED.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(Text)
    uncertain: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    """An attempt may have reached the provider (its answer was lost, or its sender died):
    the next attempt asks the provider first, or ends ``unknown`` where it cannot be asked."""
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("enrollment_id", "channel", "step_number"),
        CheckConstraint("step_number >= 1", name="step_number_positive"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("provider <> 'api'", name="provider_sends"),
        CheckConstraint(
            "status <> 'queued' OR next_attempt_at IS NOT NULL", name="queued_has_attempt_time"
        ),
        CheckConstraint(
            "(status = 'sending') = (claimed_by IS NOT NULL AND claimed_until IS NOT NULL)",
            name="claimed_while_sending",
        ),
        CheckConstraint(
            "status <> 'sent' OR (provider_message_id IS NOT NULL AND sent_at IS NOT NULL)",
            name="sent_has_message_id",
        ),
        CheckConstraint(
            "status NOT IN ('failed', 'unknown') OR last_error IS NOT NULL",
            name="failure_has_error",
        ),
        CheckConstraint(
            f"last_error IS NULL OR char_length(last_error) <= {ERROR_MESSAGE_MAX}",
            name="last_error_length",
        ),
        CheckConstraint(
            f"last_error_code IS NULL OR char_length(last_error_code) <= {ERROR_CODE_MAX}",
            name="last_error_code_length",
        ),
        Index(None, "instance_id", "status"),
        Index(
            "ix_dispatches_open_by_enrollment",
            "enrollment_id",
            postgresql_where=text("status IN ('queued', 'sending')"),
        ),
        Index(
            "ix_dispatches_queued_due",
            "next_attempt_at",
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_dispatches_lease",
            "claimed_until",
            postgresql_where=text("status = 'sending'"),
        ),
        Index(
            "ix_dispatches_sent_at",
            "instance_id",
            "sent_at",
            postgresql_where=text("status = 'sent'"),
        ),
    )


class Suppression(IdMixin, TimestampMixin, Base):
    """An address nobody sends to again, whatever the instance: one row per channel and
    normalized address."""

    __tablename__ = "suppressions"

    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"))
    address: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[SuppressionReason] = mapped_column(
        pg_enum(SuppressionReason, "suppression_reason")
    )
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_events.id", ondelete="SET NULL")
    )
    created_by: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("channel", "address"),
        *address_constraints(),
        Index(None, "created_at", "id"),
    )


class SuppressionChange(IdMixin, TimestampMixin, Base):
    """Who added or removed which suppression, and when: removing one is an operator's
    decision that must stay answerable."""

    __tablename__ = "suppression_changes"

    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"))
    address: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[SuppressionReason] = mapped_column(
        pg_enum(SuppressionReason, "suppression_reason")
    )
    actor: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        CheckConstraint("action IN ('added', 'removed')", name="action_known"),
        Index(None, "channel", "address", "created_at"),
    )


class SendQuota(TimestampMixin, Base):
    """Touches an instance started on one local day: what its ``daily_limit`` is held to.
    Senders lock the row while they claim, so two of them cannot both spend the last ones."""

    __tablename__ = "send_quotas"

    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))

    __table_args__ = (CheckConstraint("used >= 0", name="used_non_negative"),)
