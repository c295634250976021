"""The shared token buckets of the rate limits (``app.security.shared_limits``).

No ``updated_at`` trigger, unlike every other table: ``updated`` is the bucket's own clock,
written by the draw itself, and a trigger would cost every draw on the request path.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class RateLimitBucket(Base):
    """One limited caller's bucket (``requests:<key id>``, ``auth:<address>``…): its tokens as
    of ``updated``, and what the last draw granted (returned by the draw's RETURNING)."""

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    bucket: Mapped[str] = mapped_column(Text, primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    granted: Mapped[float] = mapped_column(Float, nullable=False)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
