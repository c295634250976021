"""sending: dispatches (one per touch), suppressions and their audit, send quotas, and the
enrollments' normalized addresses that let a suppression stop every enrollment of its address

Revision ID: 20261207_0003
Revises: 20261123_0002
Create Date: 2026-12-07 10:39:47.192044
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_0003"
down_revision: str | None = "20261123_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_ENUMS = {
    "dispatch_status": ("queued", "sending", "sent", "failed", "unknown", "cancelled"),
    "suppression_reason": ("unsubscribed", "spam_complaint", "bounced", "manual"),
}
# The decisions of domain.md: a failed or removed enrollment keeps its status whatever is
# reported later (before, the ladder let a report lift it to replied, bounced, unsubscribed).
STATUS_GUARD = """
CREATE OR REPLACE FUNCTION enrollment_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rank_old int := CASE OLD.status
        WHEN 'failed' THEN 0 WHEN 'removed' THEN 0 WHEN 'completed' THEN 1
        WHEN 'replied' THEN 2 WHEN 'bounced' THEN 3 WHEN 'unsubscribed' THEN 4 END;
    rank_new int := CASE NEW.status
        WHEN 'failed' THEN 0 WHEN 'removed' THEN 0 WHEN 'completed' THEN 1
        WHEN 'replied' THEN 2 WHEN 'bounced' THEN 3 WHEN 'unsubscribed' THEN 4 END;
BEGIN
    IF rank_old IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status
       AND (rank_new IS NULL OR rank_new <= rank_old OR OLD.status IN ('failed', 'removed'))
    THEN
        RAISE EXCEPTION 'enrollment % is %; it cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'enrollment_status_precedence';
    END IF;
    RETURN NEW;
END $$
"""
PREVIOUS_STATUS_GUARD = STATUS_GUARD.replace(
    "rank_new <= rank_old OR OLD.status IN ('failed', 'removed')", "rank_new <= rank_old"
)
NEW_TABLES = (
    "suppression_changes",
    "send_quotas",
    "dispatches",
    "suppressions",
    "enrollment_addresses",
)
CHANNEL = postgresql.ENUM("email", "linkedin", name="channel", create_type=False)
PROVIDER = postgresql.ENUM(
    "lemlist", "postmark", "phantombuster", "api", name="provider", create_type=False
)
DISPATCH_STATUS = postgresql.ENUM(
    *NEW_ENUMS["dispatch_status"], name="dispatch_status", create_type=False
)
SUPPRESSION_REASON = postgresql.ENUM(
    *NEW_ENUMS["suppression_reason"], name="suppression_reason", create_type=False
)


def upgrade() -> None:
    for name, labels in NEW_ENUMS.items():
        postgresql.ENUM(*labels, name=name).create(op.get_bind())
    op.create_table(
        "suppression_changes",
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", SUPPRESSION_REASON, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
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
            "action IN ('added', 'removed')", name=op.f("ck_suppression_changes_action_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression_changes")),
    )
    op.create_index(
        op.f("ix_suppression_changes_channel_address_created_at"),
        "suppression_changes",
        ["channel", "address", "created_at"],
        unique=False,
    )
    op.create_table(
        "send_quotas",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), server_default=sa.text("0"), nullable=False),
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
        sa.CheckConstraint("used >= 0", name=op.f("ck_send_quotas_used_non_negative")),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_send_quotas_instance_id_campaign_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "day", name=op.f("pk_send_quotas")),
    )
    op.create_table(
        "dispatches",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("step_number", sa.Integer(), nullable=False),
        sa.Column("provider", PROVIDER, nullable=False),
        sa.Column("status", DISPATCH_STATUS, server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.Text(), nullable=True),
        sa.Column("uncertain", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
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
            "(status = 'sending') = (claimed_by IS NOT NULL AND claimed_until IS NOT NULL)",
            name=op.f("ck_dispatches_claimed_while_sending"),
        ),
        sa.CheckConstraint("provider <> 'api'", name=op.f("ck_dispatches_provider_sends")),
        sa.CheckConstraint(
            "status <> 'queued' OR next_attempt_at IS NOT NULL",
            name=op.f("ck_dispatches_queued_has_attempt_time"),
        ),
        sa.CheckConstraint(
            "status <> 'sent' OR (provider_message_id IS NOT NULL AND sent_at IS NOT NULL)",
            name=op.f("ck_dispatches_sent_has_message_id"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('failed', 'unknown') OR last_error IS NOT NULL",
            name=op.f("ck_dispatches_failure_has_error"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_dispatches_attempts_non_negative")),
        sa.CheckConstraint(
            "last_error IS NULL OR char_length(last_error) <= 2000",
            name=op.f("ck_dispatches_last_error_length"),
        ),
        sa.CheckConstraint(
            "last_error_code IS NULL OR char_length(last_error_code) <= 100",
            name=op.f("ck_dispatches_last_error_code_length"),
        ),
        sa.CheckConstraint("step_number >= 1", name=op.f("ck_dispatches_step_number_positive")),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_dispatches_enrollment_id_enrollments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_dispatches_instance_id_campaign_instances"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatches")),
        sa.UniqueConstraint(
            "enrollment_id",
            "channel",
            "step_number",
            name=op.f("uq_dispatches_enrollment_id_channel_step_number"),
        ),
    )
    op.create_index(
        op.f("ix_dispatches_instance_id_status"),
        "dispatches",
        ["instance_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_dispatches_lease",
        "dispatches",
        ["claimed_until"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index(
        "ix_dispatches_open_by_enrollment",
        "dispatches",
        ["enrollment_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'sending')"),
    )
    op.create_index(
        "ix_dispatches_queued_due",
        "dispatches",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_dispatches_sent_at",
        "dispatches",
        ["instance_id", "sent_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sent'"),
    )
    op.create_table(
        "suppressions",
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("reason", SUPPRESSION_REASON, nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
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
            "channel <> 'email' OR address = lower(btrim(address))",
            name=op.f("ck_suppressions_email_normalized"),
        ),
        sa.CheckConstraint(
            "channel <> 'linkedin' OR address = rtrim(split_part(split_part(regexp_replace(lower(btrim(address)), '^(https?://|www\\.)*', ''), '?', 1), '#', 1), '/')",
            name=op.f("ck_suppressions_linkedin_normalized"),
        ),
        sa.CheckConstraint(
            "char_length(address) BETWEEN 3 AND 320", name=op.f("ck_suppressions_address_length")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["campaign_events.id"],
            name=op.f("fk_suppressions_event_id_campaign_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_suppressions_channel_address")),
    )
    op.create_index(
        op.f("ix_suppressions_created_at_id"), "suppressions", ["created_at", "id"], unique=False
    )
    op.create_table(
        "enrollment_addresses",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
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
            "char_length(address) BETWEEN 3 AND 320",
            name=op.f("ck_enrollment_addresses_address_length"),
        ),
        sa.CheckConstraint(
            "channel <> 'email' OR address = lower(btrim(address))",
            name=op.f("ck_enrollment_addresses_email_normalized"),
        ),
        sa.CheckConstraint(
            "channel <> 'linkedin' OR address = rtrim(split_part(split_part(regexp_replace("
            "lower(btrim(address)), '^(https?://|www\\.)*', ''), '?', 1), '#', 1), '/')",
            name=op.f("ck_enrollment_addresses_linkedin_normalized"),
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_enrollment_addresses_enrollment_id_enrollments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("enrollment_id", "channel", name=op.f("pk_enrollment_addresses")),
    )
    op.create_index(
        op.f("ix_enrollment_addresses_channel_address"),
        "enrollment_addresses",
        ["channel", "address"],
        unique=False,
    )
    for table in NEW_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    op.execute(STATUS_GUARD)


def downgrade() -> None:
    op.execute(PREVIOUS_STATUS_GUARD)
    op.drop_index(
        op.f("ix_enrollment_addresses_channel_address"), table_name="enrollment_addresses"
    )
    op.drop_table("enrollment_addresses")
    op.drop_index(op.f("ix_suppressions_created_at_id"), table_name="suppressions")
    op.drop_table("suppressions")
    op.drop_index(
        "ix_dispatches_sent_at",
        table_name="dispatches",
        postgresql_where=sa.text("status = 'sent'"),
    )
    op.drop_index(
        "ix_dispatches_queued_due",
        table_name="dispatches",
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.drop_index(
        "ix_dispatches_open_by_enrollment",
        table_name="dispatches",
        postgresql_where=sa.text("status IN ('queued', 'sending')"),
    )
    op.drop_index(
        "ix_dispatches_lease",
        table_name="dispatches",
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.drop_index(op.f("ix_dispatches_instance_id_status"), table_name="dispatches")
    op.drop_table("dispatches")
    op.drop_table("send_quotas")
    op.drop_index(
        op.f("ix_suppression_changes_channel_address_created_at"), table_name="suppression_changes"
    )
    op.drop_table("suppression_changes")
    for name in NEW_ENUMS:
        op.execute(f"DROP TYPE {name}")
