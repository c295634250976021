"""live key holds: the open subscriptions of each API key, per serving process, so that the
per-key limit holds for the whole service

UNLOGGED: after a crash an emptied table is right, the subscriptions it counted went with
their processes. A process's rows count while its lease (``expires_at``) runs.

Revision ID: 20261207_0013_live_key_holds
Revises: 20261207_0012_live_trigger_plans
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0013_live_key_holds"
down_revision: str | None = "20261207_0012_live_trigger_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_key_holds",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("process", sa.Text(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("held > 0", name=op.f("ck_live_key_holds_held_positive")),
        sa.CheckConstraint(
            "char_length(process) BETWEEN 1 AND 64", name=op.f("ck_live_key_holds_process_length")
        ),
        sa.PrimaryKeyConstraint("key_id", "process", name=op.f("pk_live_key_holds")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("live_key_holds")
