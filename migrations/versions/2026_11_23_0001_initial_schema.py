"""initial schema: every table, constraint, index and trigger of domain.md, plus api_keys.

Revision ID: 20261123_0001
Revises:
Create Date: 2026-11-23 09:35:40.873164
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261123_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = (
    "api_keys",
    "campaign_templates",
    "email_steps",
    "linkedin_steps",
    "campaign_instances",
    "instance_transitions",
    "enrollments",
    "campaign_events",
)
ENUM_TYPES = (
    "campaign_type",
    "path_type",
    "linkedin_action",
    "instance_status",
    "enrollment_status",
    "event_type",
    "channel",
    "provider",
)

# updated_at is kept by the database so that raw SQL and set-based updates move it too.
SET_UPDATED_AT = """
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$
"""

# The last guard of the precedence rule: a terminal enrollment only moves up the ladder
# failed/removed < completed < replied < bounced < unsubscribed, so an unsubscribe is never lost.
ENROLLMENT_STATUS_GUARD = """
CREATE FUNCTION enrollment_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rank_old int := CASE OLD.status
        WHEN 'failed' THEN 0 WHEN 'removed' THEN 0 WHEN 'completed' THEN 1
        WHEN 'replied' THEN 2 WHEN 'bounced' THEN 3 WHEN 'unsubscribed' THEN 4 END;
    rank_new int := CASE NEW.status
        WHEN 'failed' THEN 0 WHEN 'removed' THEN 0 WHEN 'completed' THEN 1
        WHEN 'replied' THEN 2 WHEN 'bounced' THEN 3 WHEN 'unsubscribed' THEN 4 END;
BEGIN
    IF rank_old IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status
       AND (rank_new IS NULL OR rank_new <= rank_old) THEN
        RAISE EXCEPTION 'enrollment % is %; it cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'enrollment_status_precedence';
    END IF;
    RETURN NEW;
END $$
"""


def _create_triggers() -> None:
    op.execute(SET_UPDATED_AT)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    op.execute(ENROLLMENT_STATUS_GUARD)
    op.execute(
        "CREATE TRIGGER trg_enrollments_status_guard BEFORE UPDATE OF status ON enrollments "
        "FOR EACH ROW EXECUTE FUNCTION enrollment_status_guard()"
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
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
            "cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write', 'webhooks', 'admin']",
            name=op.f("ck_api_keys_scopes_known"),
        ),
        sa.CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_api_keys_key_hash_sha256")),
        sa.CheckConstraint(
            "NOT revoked OR revoked_at IS NOT NULL", name=op.f("ck_api_keys_revoked_at_set")
        ),
        sa.CheckConstraint(
            "char_length(btrim(name)) BETWEEN 1 AND 100", name=op.f("ck_api_keys_name_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "campaign_templates",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "type",
            sa.Enum("email", "linkedin", "multi_channel", name="campaign_type"),
            nullable=False,
        ),
        sa.Column(
            "path_type",
            sa.Enum("structured", "dynamic_ai", name="path_type"),
            server_default="structured",
            nullable=False,
        ),
        sa.Column("icp_profile_id", sa.Uuid(), nullable=True),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            "jsonb_typeof(settings) = 'object' AND octet_length(settings::text) <= 10240",
            name=op.f("ck_campaign_templates_settings_object"),
        ),
        sa.CheckConstraint(
            "char_length(btrim(name)) BETWEEN 1 AND 255",
            name=op.f("ck_campaign_templates_name_length"),
        ),
        sa.CheckConstraint(
            "description IS NULL OR char_length(description) <= 5000",
            name=op.f("ck_campaign_templates_description_length"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_templates")),
    )
    op.create_index(
        op.f("ix_campaign_templates_created_at_id"),
        "campaign_templates",
        ["created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_campaign_templates_is_active"), "campaign_templates", ["is_active"], unique=False
    )
    op.create_index(
        op.f("ix_campaign_templates_path_type"), "campaign_templates", ["path_type"], unique=False
    )
    op.create_index(
        op.f("ix_campaign_templates_type"), "campaign_templates", ["type"], unique=False
    )
    op.create_table(
        "campaign_instances",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "active", "paused", "completed", "failed", name="instance_status"),
            server_default="draft",
            nullable=False,
        ),
        sa.Column(
            "provider_config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("total_enrolled", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_sent", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_delivered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_opened", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_clicked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_replied", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_bounced", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_unsubscribed", sa.Integer(), server_default=sa.text("0"), nullable=False),
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
            "jsonb_typeof(provider_config) = 'object' AND octet_length(provider_config::text) <= 10240",
            name=op.f("ck_campaign_instances_provider_config_object"),
        ),
        sa.CheckConstraint(
            "status <> 'completed' OR completed_at IS NOT NULL",
            name=op.f("ck_campaign_instances_completed_at_set"),
        ),
        sa.CheckConstraint(
            "status <> 'failed' OR char_length(btrim(coalesce(failure_reason, ''))) BETWEEN 1 AND 2000",
            name=op.f("ck_campaign_instances_failure_reason_set"),
        ),
        sa.CheckConstraint(
            "status <> 'paused' OR paused_at IS NOT NULL",
            name=op.f("ck_campaign_instances_paused_at_set"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'failed') OR started_at IS NOT NULL",
            name=op.f("ck_campaign_instances_started_at_set"),
        ),
        sa.CheckConstraint(
            "char_length(btrim(name)) BETWEEN 1 AND 255",
            name=op.f("ck_campaign_instances_name_length"),
        ),
        sa.CheckConstraint(
            "total_bounced >= 0", name=op.f("ck_campaign_instances_total_bounced_non_negative")
        ),
        sa.CheckConstraint(
            "total_clicked >= 0", name=op.f("ck_campaign_instances_total_clicked_non_negative")
        ),
        sa.CheckConstraint(
            "total_delivered >= 0", name=op.f("ck_campaign_instances_total_delivered_non_negative")
        ),
        sa.CheckConstraint(
            "total_enrolled >= 0", name=op.f("ck_campaign_instances_total_enrolled_non_negative")
        ),
        sa.CheckConstraint(
            "total_opened >= 0", name=op.f("ck_campaign_instances_total_opened_non_negative")
        ),
        sa.CheckConstraint(
            "total_replied >= 0", name=op.f("ck_campaign_instances_total_replied_non_negative")
        ),
        sa.CheckConstraint(
            "total_sent >= 0", name=op.f("ck_campaign_instances_total_sent_non_negative")
        ),
        sa.CheckConstraint(
            "total_unsubscribed >= 0",
            name=op.f("ck_campaign_instances_total_unsubscribed_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["campaign_templates.id"],
            name=op.f("fk_campaign_instances_template_id_campaign_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_instances")),
    )
    op.create_index(
        op.f("ix_campaign_instances_created_at_id"),
        "campaign_instances",
        ["created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_campaign_instances_status"), "campaign_instances", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_campaign_instances_template_id_created_at_id"),
        "campaign_instances",
        ["template_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "email_steps",
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ab_variant", sa.Text(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("step_number", sa.Integer(), nullable=False),
        sa.Column("delay_hours", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            "ab_variant IS NULL OR char_length(ab_variant) BETWEEN 1 AND 50",
            name=op.f("ck_email_steps_ab_variant_length"),
        ),
        sa.CheckConstraint(
            "char_length(body) BETWEEN 10 AND 50000", name=op.f("ck_email_steps_body_length")
        ),
        sa.CheckConstraint(
            "delay_hours BETWEEN 0 AND 720", name=op.f("ck_email_steps_delay_hours_range")
        ),
        sa.CheckConstraint("step_number >= 1", name=op.f("ck_email_steps_step_number_positive")),
        sa.CheckConstraint(
            "subject IS NULL OR char_length(subject) <= 255",
            name=op.f("ck_email_steps_subject_length"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["campaign_templates.id"],
            name=op.f("fk_email_steps_template_id_campaign_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_steps")),
    )
    op.create_index(
        "ix_email_steps_template_id_step_number",
        "email_steps",
        ["template_id", "step_number"],
        unique=False,
    )
    op.create_index(
        "uq_email_steps_template_id_step_number_active",
        "email_steps",
        ["template_id", "step_number"],
        unique=True,
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "linkedin_steps",
        sa.Column(
            "action",
            sa.Enum(
                "profile_visit",
                "connection_request",
                "message",
                "voice_message",
                name="linkedin_action",
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("step_number", sa.Integer(), nullable=False),
        sa.Column("delay_hours", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            "action <> 'connection_request' OR message IS NULL OR char_length(message) <= 300",
            name=op.f("ck_linkedin_steps_connection_note_length"),
        ),
        sa.CheckConstraint(
            "action <> 'message' OR char_length(btrim(coalesce(message, ''))) > 0",
            name=op.f("ck_linkedin_steps_message_required"),
        ),
        sa.CheckConstraint(
            "action <> 'profile_visit' OR coalesce(message, '') = ''",
            name=op.f("ck_linkedin_steps_profile_visit_no_message"),
        ),
        sa.CheckConstraint(
            "delay_hours BETWEEN 0 AND 720", name=op.f("ck_linkedin_steps_delay_hours_range")
        ),
        sa.CheckConstraint(
            "message IS NULL OR char_length(message) <= 1500",
            name=op.f("ck_linkedin_steps_message_length"),
        ),
        sa.CheckConstraint("step_number >= 1", name=op.f("ck_linkedin_steps_step_number_positive")),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["campaign_templates.id"],
            name=op.f("fk_linkedin_steps_template_id_campaign_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_steps")),
    )
    op.create_index(
        "ix_linkedin_steps_template_id_step_number",
        "linkedin_steps",
        ["template_id", "step_number"],
        unique=False,
    )
    op.create_index(
        "uq_linkedin_steps_template_id_step_number_active",
        "linkedin_steps",
        ["template_id", "step_number"],
        unique=True,
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "enrollments",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "enrolled",
                "active",
                "paused",
                "completed",
                "replied",
                "unsubscribed",
                "bounced",
                "failed",
                "removed",
                name="enrollment_status",
            ),
            server_default="enrolled",
            nullable=False,
        ),
        sa.Column("current_step", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "enrolled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
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
            "jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 10240",
            name=op.f("ck_enrollments_metadata_object"),
        ),
        sa.CheckConstraint(
            "status <> 'unsubscribed' OR unsubscribed_at IS NOT NULL",
            name=op.f("ck_enrollments_unsubscribed_at_set"),
        ),
        sa.CheckConstraint(
            "char_length(contact_id) BETWEEN 1 AND 255",
            name=op.f("ck_enrollments_contact_id_length"),
        ),
        sa.CheckConstraint(
            "current_step >= 0", name=op.f("ck_enrollments_current_step_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_enrollments_instance_id_campaign_instances"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint(
            "instance_id", "contact_id", name=op.f("uq_enrollments_instance_id_contact_id")
        ),
    )
    op.create_index(op.f("ix_enrollments_contact_id"), "enrollments", ["contact_id"], unique=False)
    op.create_index(
        op.f("ix_enrollments_instance_id_created_at_id"),
        "enrollments",
        ["instance_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_enrollments_next_action_at_due",
        "enrollments",
        ["next_action_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND next_action_at IS NOT NULL"),
    )
    op.create_index(op.f("ix_enrollments_status"), "enrollments", ["status"], unique=False)
    op.create_table(
        "instance_transitions",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum("draft", "active", "paused", "completed", "failed", name="instance_status"),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            sa.Enum("draft", "active", "paused", "completed", "failed", name="instance_status"),
            nullable=False,
        ),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
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
            "from_status IS DISTINCT FROM to_status",
            name=op.f("ck_instance_transitions_status_changes"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_instance_transitions_instance_id_campaign_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_transitions")),
    )
    op.create_index(
        op.f("ix_instance_transitions_instance_id_at"),
        "instance_transitions",
        ["instance_id", "at"],
        unique=False,
    )
    op.create_table(
        "campaign_events",
        sa.Column("enrollment_id", sa.Uuid(), nullable=True),
        sa.Column("instance_id", sa.Uuid(), nullable=True),
        sa.Column(
            "event_type",
            sa.Enum(
                "sent",
                "delivered",
                "opened",
                "clicked",
                "replied",
                "bounced",
                "unsubscribed",
                "spam_complaint",
                "profile_visited",
                "connection_requested",
                "connection_accepted",
                "message_sent",
                "voice_message_sent",
                "failed",
                name="event_type",
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.Enum("email", "linkedin", name="channel"), nullable=False),
        sa.Column(
            "provider",
            sa.Enum("lemlist", "postmark", "phantombuster", "api", name="provider"),
            nullable=False,
        ),
        sa.Column("provider_event_id", sa.Text(), nullable=True),
        sa.Column("step_number", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
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
            "(event_type NOT IN ('bounced', 'clicked', 'delivered', 'opened', 'sent', 'spam_complaint', 'unsubscribed') OR channel = 'email') AND (event_type NOT IN ('connection_accepted', 'connection_requested', 'message_sent', 'profile_visited', 'voice_message_sent') OR channel = 'linkedin')",
            name=op.f("ck_campaign_events_event_type_channel"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 10240",
            name=op.f("ck_campaign_events_metadata_object"),
        ),
        sa.CheckConstraint(
            "provider_event_id IS NULL OR char_length(provider_event_id) BETWEEN 1 AND 255",
            name=op.f("ck_campaign_events_provider_event_id_length"),
        ),
        sa.CheckConstraint(
            "step_number IS NULL OR step_number >= 1",
            name=op.f("ck_campaign_events_step_number_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_campaign_events_enrollment_id_enrollments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["campaign_instances.id"],
            name=op.f("fk_campaign_events_instance_id_campaign_instances"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
    )
    op.create_index(
        op.f("ix_campaign_events_enrollment_id_occurred_at_id"),
        "campaign_events",
        ["enrollment_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_campaign_events_instance_id_event_type"),
        "campaign_events",
        ["instance_id", "event_type"],
        unique=False,
    )
    op.create_index(
        op.f("ix_campaign_events_instance_id_occurred_at_id"),
        "campaign_events",
        ["instance_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_campaign_events_occurred_at"), "campaign_events", ["occurred_at"], unique=False
    )
    op.create_index(
        "ix_campaign_events_orphans",
        "campaign_events",
        ["occurred_at", "id"],
        unique=False,
        postgresql_where=sa.text("enrollment_id IS NULL"),
    )
    op.create_index(
        "uq_campaign_events_provider_provider_event_id",
        "campaign_events",
        ["provider", "provider_event_id"],
        unique=True,
        postgresql_where=sa.text("provider_event_id IS NOT NULL"),
    )

    _create_triggers()


def downgrade() -> None:
    op.execute("DROP FUNCTION enrollment_status_guard() CASCADE")
    op.execute("DROP FUNCTION set_updated_at() CASCADE")
    op.drop_index(
        "uq_campaign_events_provider_provider_event_id",
        table_name="campaign_events",
        postgresql_where=sa.text("provider_event_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_campaign_events_orphans",
        table_name="campaign_events",
        postgresql_where=sa.text("enrollment_id IS NULL"),
    )
    op.drop_index(op.f("ix_campaign_events_occurred_at"), table_name="campaign_events")
    op.drop_index(
        op.f("ix_campaign_events_instance_id_occurred_at_id"), table_name="campaign_events"
    )
    op.drop_index(op.f("ix_campaign_events_instance_id_event_type"), table_name="campaign_events")
    op.drop_index(
        op.f("ix_campaign_events_enrollment_id_occurred_at_id"), table_name="campaign_events"
    )
    op.drop_table("campaign_events")
    op.drop_index(op.f("ix_instance_transitions_instance_id_at"), table_name="instance_transitions")
    op.drop_table("instance_transitions")
    op.drop_index(op.f("ix_enrollments_status"), table_name="enrollments")
    op.drop_index(
        "ix_enrollments_next_action_at_due",
        table_name="enrollments",
        postgresql_where=sa.text("status = 'active' AND next_action_at IS NOT NULL"),
    )
    op.drop_index(op.f("ix_enrollments_instance_id_created_at_id"), table_name="enrollments")
    op.drop_index(op.f("ix_enrollments_contact_id"), table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index(
        "uq_linkedin_steps_template_id_step_number_active",
        table_name="linkedin_steps",
        postgresql_where=sa.text("is_active"),
    )
    op.drop_index("ix_linkedin_steps_template_id_step_number", table_name="linkedin_steps")
    op.drop_table("linkedin_steps")
    op.drop_index(
        "uq_email_steps_template_id_step_number_active",
        table_name="email_steps",
        postgresql_where=sa.text("is_active"),
    )
    op.drop_index("ix_email_steps_template_id_step_number", table_name="email_steps")
    op.drop_table("email_steps")
    op.drop_index(
        op.f("ix_campaign_instances_template_id_created_at_id"), table_name="campaign_instances"
    )
    op.drop_index(op.f("ix_campaign_instances_status"), table_name="campaign_instances")
    op.drop_index(op.f("ix_campaign_instances_created_at_id"), table_name="campaign_instances")
    op.drop_table("campaign_instances")
    op.drop_index(op.f("ix_campaign_templates_type"), table_name="campaign_templates")
    op.drop_index(op.f("ix_campaign_templates_path_type"), table_name="campaign_templates")
    op.drop_index(op.f("ix_campaign_templates_is_active"), table_name="campaign_templates")
    op.drop_index(op.f("ix_campaign_templates_created_at_id"), table_name="campaign_templates")
    op.drop_table("campaign_templates")
    op.drop_table("api_keys")
    for enum_type in ENUM_TYPES:
        op.execute(f"DROP TYPE {enum_type}")
