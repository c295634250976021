"""API keys: only a SHA-256 hash is stored; the key itself is shown once at creation.

A key may expire (``expires_at``) and may be rotated: the new secret's hash replaces
``key_hash`` and the one before stays valid until ``previous_key_valid_until`` (the grace
period), so that clients can be moved over without an outage.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin


class ApiKey(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    previous_key_hash: Mapped[str | None] = mapped_column(Text, unique=True)
    previous_key_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 100", name="name_length"),
        CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name="key_hash_sha256"),
        CheckConstraint(
            "cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write', 'webhooks', 'admin']",
            name="scopes_known",
        ),
        CheckConstraint("NOT revoked OR revoked_at IS NOT NULL", name="revoked_at_set"),
        CheckConstraint(
            "expires_at IS NULL OR expires_at > created_at", name="expires_after_created"
        ),
        CheckConstraint(
            "rotated_at IS NULL OR rotated_at >= created_at", name="rotated_after_created"
        ),
        # A previous secret exists only with its end of grace, after a rotation, and differs
        # from the current one.
        CheckConstraint(
            "(previous_key_hash IS NULL) = (previous_key_valid_until IS NULL)",
            name="previous_key_has_grace",
        ),
        CheckConstraint(
            "previous_key_hash IS NULL OR (previous_key_hash ~ '^[0-9a-f]{64}$'"
            " AND previous_key_hash <> key_hash AND rotated_at IS NOT NULL"
            " AND previous_key_valid_until > rotated_at)",
            name="previous_key_rotated",
        ),
    )
