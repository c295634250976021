"""What an erasure leaves behind: hashed suppressions and an audit row, neither holding the
erased person's data.

A contact asked to be forgotten keeps no address in clear anywhere, yet must never be enrolled
again: ``hashed_suppressions`` keeps the SHA-256 of each of its normalized addresses, which the
enrollment check compares against. ``contact_erasures`` says who erased which contact (by the
SHA-256 of its CRM id) and when, with how much was cleared.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import Channel
from app.models.base import Base, IdMixin, TimestampMixin, pg_enum

SHA256_HEX = "^[0-9a-f]{64}$"
ERASURE_COUNTS = ("enrollments", "events", "dispatches", "addresses")
"""What an erasure counts: enrollments erased, events and dispatches cleared, addresses
turned into hashed suppressions."""


class HashedSuppression(TimestampMixin, Base):
    """An erased address: nobody enrolls it again, and nobody can read it back."""

    __tablename__ = "hashed_suppressions"

    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"), primary_key=True)
    address_sha256: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        CheckConstraint(f"address_sha256 ~ '{SHA256_HEX}'", name="address_sha256_hex"),
    )


class ContactErasure(IdMixin, TimestampMixin, Base):
    """One erasure that changed something (repeating one changes nothing and adds no row)."""

    __tablename__ = "contact_erasures"

    contact_sha256: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    erased_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    enrollments: Mapped[int] = mapped_column(Integer, nullable=False)
    events: Mapped[int] = mapped_column(Integer, nullable=False)
    dispatches: Mapped[int] = mapped_column(Integer, nullable=False)
    addresses: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        CheckConstraint(f"contact_sha256 ~ '{SHA256_HEX}'", name="contact_sha256_hex"),
        CheckConstraint("char_length(btrim(actor)) BETWEEN 1 AND 255", name="actor_length"),
        CheckConstraint("enrollments >= 1", name="enrollments_positive"),
        *(
            CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative")
            for c in ERASURE_COUNTS
            if c != "enrollments"
        ),
        Index(None, "contact_sha256", "erased_at"),
    )
