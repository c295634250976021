"""event outcomes and counter shards: unique-outcome counting without a hot counter row

Revision ID: 20261123_0002
Revises: 20261123_0001
Create Date: 2026-11-23 09:56:33.382216
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261123_0002"
down_revision: str | None = "20261123_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_counter_shards",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("sent", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("delivered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("opened", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("clicked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("replied", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("bounced", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unsubscribed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "bounced >= 0", name=op.f("ck_instance_counter_shards_bounced_non_negative")
        ),
        sa.CheckConstraint(
            "clicked >= 0", name=op.f("ck_instance_counter_shards_clicked_non_negative")
        ),
        sa.CheckConstraint(
            "delivered >= 0", name=op.f("ck_instance_counter_shards_delivered_non_negative")
        ),
        sa.CheckConstraint(
            "opened >= 0", name=op.f("ck_instance_counter_shards_opened_non_negative")
        ),
        sa.CheckConstraint(
            "replied >= 0", name=op.f("ck_instance_counter_shards_replied_non_negative")
        ),
        sa.CheckConstraint("sent >= 0", name=op.f("ck_instance_counter_shards_sent_non_negative")),
        sa.CheckConstraint(
            "shard BETWEEN 0 AND 7", name=op.f("ck_instance_counter_shards_shard_range")
        ),
        sa.CheckConstraint(
            "unsubscribed >= 0", name=op.f("ck_instance_counter_shards_unsubscribed_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_instance_counter_shards_instance_id_campaign_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "shard", name=op.f("pk_instance_counter_shards")),
    )
    op.create_table(
        "event_outcomes",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column(
            "channel",
            postgresql.ENUM("email", "linkedin", name="channel", create_type=False),
            nullable=False,
        ),
        sa.Column("step_number", sa.Integer(), nullable=False),
        sa.Column("counter", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "counter IN ('sent', 'delivered', 'opened', 'clicked', 'replied', 'bounced', 'unsubscribed')",
            name=op.f("ck_event_outcomes_counter_known"),
        ),
        sa.CheckConstraint(
            "step_number >= 0", name=op.f("ck_event_outcomes_step_number_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_event_outcomes_enrollment_id_enrollments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_event_outcomes_instance_id_campaign_instances"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "enrollment_id", "channel", "step_number", "counter", name=op.f("pk_event_outcomes")
        ),
    )
    op.create_index(
        op.f("ix_event_outcomes_instance_id_counter"),
        "event_outcomes",
        ["instance_id", "counter"],
        unique=False,
    )

    op.create_check_constraint(
        op.f("ck_campaign_events_linked_event_has_instance"),
        "campaign_events",
        "enrollment_id IS NULL OR instance_id IS NOT NULL",
    )
    for table in ("event_outcomes", "instance_counter_shards"):
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_campaign_events_linked_event_has_instance"), "campaign_events", type_="check"
    )
    op.drop_index(op.f("ix_event_outcomes_instance_id_counter"), table_name="event_outcomes")
    op.drop_table("event_outcomes")
    op.drop_table("instance_counter_shards")
