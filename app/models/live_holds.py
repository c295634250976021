"""How many subscriptions each serving process holds open per API key
(``app.services.live.holds``): the per-key limit counted for the whole service.

UNLOGGED, as the rate limits' buckets: after a crash an emptied table is right (the processes
that held subscriptions are gone with their connections). No ``updated_at`` trigger: the
lease, ``expires_at``, is the row's own clock, renewed by its process.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LiveKeyHold(Base):
    """One process's open subscriptions of one key, counted while its lease runs."""

    __tablename__ = "live_key_holds"
    __table_args__ = (
        CheckConstraint("held > 0", name="held_positive"),
        CheckConstraint("char_length(process) BETWEEN 1 AND 64", name="process_length"),
        {"prefixes": ["UNLOGGED"]},
    )

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    process: Mapped[str] = mapped_column(Text, primary_key=True)
    held: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
