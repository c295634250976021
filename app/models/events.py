"""What providers reported; ``enrollment_id`` is NULL for orphans."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import (
    EMAIL_ONLY_EVENTS,
    LINKEDIN_ONLY_EVENTS,
    Channel,
    EventType,
    Provider,
)
from app.domain.limits import PROVIDER_EVENT_ID_MAX
from app.models.base import (
    Base,
    IdMixin,
    TimestampMixin,
    json_object_check,
    json_object_column,
    pg_enum,
)
from app.models.replies import sentiment_check


def _sql_list(values: frozenset[EventType]) -> str:
    return ", ".join(f"'{v.value}'" for v in sorted(values))


class CampaignEvent(IdMixin, TimestampMixin, Base):
    __tablename__ = "campaign_events"

    enrollment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT")
    )
    instance_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_instances.id", ondelete="RESTRICT")
    )
    event_type: Mapped[EventType] = mapped_column(pg_enum(EventType, "event_type"))
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"))
    provider: Mapped[Provider] = mapped_column(pg_enum(Provider, "provider"))
    provider_event_id: Mapped[str | None] = mapped_column(Text)
    step_number: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    metadata_: Mapped[dict[str, Any]] = json_object_column("metadata")
    sentiment: Mapped[str | None] = mapped_column(Text)
    """A reply's sentiment: its latest classification (``reply_classifications``), kept here
    by ``refresh_reply_sentiments`` so reads and analytics need no join."""
    sentiment_by: Mapped[str | None] = mapped_column(Text)
    sentiment_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    return_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    via_api: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    """Reported through the API (the generic webhook, recordEvent) rather than by the
    provider's own webhook or our sender: part of the dedupe key, so an event posted with a
    key never makes a provider's real delivery of the same id a duplicate."""

    __table_args__ = (
        CheckConstraint("step_number IS NULL OR step_number >= 1", name="step_number_positive"),
        CheckConstraint(
            f"provider_event_id IS NULL"
            f" OR char_length(provider_event_id) BETWEEN 1 AND {PROVIDER_EVENT_ID_MAX}",
            name="provider_event_id_length",
        ),
        CheckConstraint(
            f"(event_type NOT IN ({_sql_list(EMAIL_ONLY_EVENTS)}) OR channel = 'email')"
            f" AND (event_type NOT IN ({_sql_list(LINKEDIN_ONLY_EVENTS)}) OR channel = 'linkedin')",
            name="event_type_channel",
        ),
        CheckConstraint(json_object_check("metadata"), name="metadata_object"),
        CheckConstraint(
            "enrollment_id IS NULL OR instance_id IS NOT NULL", name="linked_event_has_instance"
        ),
        CheckConstraint(sentiment_check("sentiment"), name="sentiment_known"),
        CheckConstraint(
            "sentiment IS NULL OR event_type = 'replied'", name="sentiment_only_on_replies"
        ),
        CheckConstraint(
            "(sentiment IS NULL) = (sentiment_by IS NULL)"
            " AND (sentiment IS NULL) = (sentiment_at IS NULL)",
            name="sentiment_classified",
        ),
        CheckConstraint(
            "return_date IS NULL OR sentiment = 'out_of_office'", name="return_date_out_of_office"
        ),
        Index(
            "uq_campaign_events_provider_provider_event_id_via_api",
            "provider",
            "provider_event_id",
            "via_api",
            unique=True,
            postgresql_where=text("provider_event_id IS NOT NULL"),
        ),
        Index(None, "enrollment_id", "occurred_at", "id"),
        Index(None, "instance_id", "event_type"),
        Index(None, "instance_id", "occurred_at", "id"),
        Index(None, "occurred_at"),
        Index(
            "ix_campaign_events_orphans",
            "occurred_at",
            "id",
            postgresql_where=text("enrollment_id IS NULL"),
        ),
    )
