"""shared rate limits: one token bucket per limited caller, shared by every process

UNLOGGED: a bucket is worth nothing after a crash (an emptied table is every bucket full, which
is what a restart gave each process before), and skipping the WAL keeps the draws cheap.

Revision ID: 20261207_0010_shared_rate_limits
Revises: 20261207_0009_live_updates
Create Date: 2026-12-07 17:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0010_shared_rate_limits"
down_revision: str | None = "20261207_0009_live_updates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("granted", sa.Float(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_limit_buckets")),
        prefixes=["UNLOGGED"],
    )
    op.create_index(op.f("ix_rate_limit_buckets_updated"), "rate_limit_buckets", ["updated"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_limit_buckets_updated"), table_name="rate_limit_buckets")
    op.drop_table("rate_limit_buckets")
