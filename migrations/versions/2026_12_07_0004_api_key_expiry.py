"""api keys: an optional expiry, and rotation (the previous secret valid for a grace period)

Revision ID: 20261207_0004_api_keys
Revises: 20261207_0003
Create Date: 2026-12-07 14:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0004_api_keys"
down_revision: str | None = "20261207_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {
    "expires_after_created": "expires_at IS NULL OR expires_at > created_at",
    "rotated_after_created": "rotated_at IS NULL OR rotated_at >= created_at",
    "previous_key_has_grace": "(previous_key_hash IS NULL) = (previous_key_valid_until IS NULL)",
    "previous_key_rotated": (
        "previous_key_hash IS NULL OR (previous_key_hash ~ '^[0-9a-f]{64}$'"
        " AND previous_key_hash <> key_hash AND rotated_at IS NOT NULL"
        " AND previous_key_valid_until > rotated_at)"
    ),
}


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("previous_key_hash", sa.Text(), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("previous_key_valid_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_unique_constraint(
        op.f("uq_api_keys_previous_key_hash"), "api_keys", ["previous_key_hash"]
    )
    for name, condition in CHECKS.items():
        op.create_check_constraint(op.f(f"ck_api_keys_{name}"), "api_keys", condition)


def downgrade() -> None:
    for name in reversed(CHECKS):
        op.drop_constraint(op.f(f"ck_api_keys_{name}"), "api_keys", type_="check")
    op.drop_constraint(op.f("uq_api_keys_previous_key_hash"), "api_keys", type_="unique")
    op.drop_column("api_keys", "previous_key_valid_until")
    op.drop_column("api_keys", "previous_key_hash")
    op.drop_column("api_keys", "rotated_at")
    op.drop_column("api_keys", "expires_at")
