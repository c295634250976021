"""Reply classifications: every judgement of what a reply says, from a provider or a person.

A reply's ``sentiment`` (and its enrollment's) is derived from these rows by the database
function ``refresh_reply_sentiments`` (migration 0007): the latest classification wins, by
``classified_at`` then id. The derivation reads only stored rows, so the final state does not
depend on the order in which replies and classifications arrive.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import Provider, ReplySentiment
from app.domain.limits import PROVIDER_EVENT_ID_MAX
from app.models.base import Base, IdMixin, TimestampMixin, pg_enum

SENTIMENT_VALUES = ", ".join(f"'{s.value}'" for s in ReplySentiment)


def sentiment_check(column: str) -> str:
    """SQL: ``column`` is NULL or one of the sentiments."""
    return f"{column} IS NULL OR {column} IN ({SENTIMENT_VALUES})"


class ReplyClassification(IdMixin, TimestampMixin, Base):
    """One classification. ``event_id`` names the reply a person classified (classifyReply); a
    provider's (lemlist's interested / not interested) has none: it judges the lead in the
    campaign, so it qualifies every reply of the enrollment that has no later classification."""

    __tablename__ = "reply_classifications"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="RESTRICT"), nullable=False
    )
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_events.id", ondelete="RESTRICT")
    )
    sentiment: Mapped[str] = mapped_column(Text, nullable=False)
    return_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provider: Mapped[Provider] = mapped_column(pg_enum(Provider, "provider"))
    provider_event_id: Mapped[str | None] = mapped_column(Text)
    classified_by: Mapped[str] = mapped_column(Text, nullable=False)
    classified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(f"sentiment IN ({SENTIMENT_VALUES})", name="sentiment_known"),
        CheckConstraint(
            "return_date IS NULL OR sentiment = 'out_of_office'", name="return_date_out_of_office"
        ),
        CheckConstraint("(provider = 'api') = (event_id IS NOT NULL)", name="api_names_its_reply"),
        CheckConstraint(
            f"provider_event_id IS NULL"
            f" OR char_length(provider_event_id) BETWEEN 1 AND {PROVIDER_EVENT_ID_MAX}",
            name="provider_event_id_length",
        ),
        CheckConstraint(
            "char_length(classified_by) BETWEEN 1 AND 255", name="classified_by_length"
        ),
        Index(
            "uq_reply_classifications_provider_provider_event_id",
            "provider",
            "provider_event_id",
            unique=True,
            postgresql_where=text("provider_event_id IS NOT NULL"),
        ),
        Index(None, "enrollment_id", "classified_at"),
        Index(None, "event_id"),
    )
