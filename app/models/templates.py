"""Campaign templates and their two ordered step lists."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import (
    POLICY_SETTING,
    CrossCampaignPolicy,
    LinkedInAction,
    PathType,
    TemplateType,
)
from app.domain.limits import (
    AB_VARIANT_MAX,
    BODY_MAX,
    BODY_MIN,
    CONNECTION_NOTE_MAX,
    DELAY_HOURS_MAX,
    DESCRIPTION_MAX,
    LINKEDIN_MESSAGE_MAX,
    NAME_MAX,
    SUBJECT_MAX,
)
from app.models.base import (
    Base,
    IdMixin,
    TimestampMixin,
    json_object_check,
    json_object_column,
    pg_enum,
)

POLICY_SETTING_CHECK = (
    f"jsonb_typeof(settings) <> 'object' OR NOT settings ? '{POLICY_SETTING}'"
    f" OR settings -> '{POLICY_SETTING}' IN ("
    + ", ".join("'\"" + p.value + "\"'::jsonb" for p in CrossCampaignPolicy)
    + ")"
)
"""The template's default cross-campaign policy, when set, is one the enroller knows."""


class CampaignTemplate(IdMixin, TimestampMixin, Base):
    __tablename__ = "campaign_templates"

    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[TemplateType] = mapped_column(pg_enum(TemplateType, "campaign_type"))
    path_type: Mapped[PathType] = mapped_column(
        pg_enum(PathType, "path_type"), server_default=PathType.STRUCTURED.value
    )
    icp_profile_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    settings: Mapped[dict[str, Any]] = json_object_column()
    created_by: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(f"char_length(btrim(name)) BETWEEN 1 AND {NAME_MAX}", name="name_length"),
        CheckConstraint(
            f"description IS NULL OR char_length(description) <= {DESCRIPTION_MAX}",
            name="description_length",
        ),
        CheckConstraint(json_object_check("settings"), name="settings_object"),
        CheckConstraint(POLICY_SETTING_CHECK, name="cross_campaign_policy_known"),
        Index(None, "type"),
        Index(None, "path_type"),
        Index(None, "is_active"),
        Index(None, "created_at", "id"),
    )


class _StepColumns(IdMixin, TimestampMixin):
    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_templates.id", ondelete="CASCADE"), nullable=False
    )
    step_number: Mapped[int] = mapped_column(Integer, nullable=False)
    delay_hours: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


def _step_table_args(table: str) -> tuple[Any, ...]:
    """Constraints both step tables share: ranges, and one active step per number."""
    return (
        CheckConstraint("step_number >= 1", name="step_number_positive"),
        CheckConstraint(f"delay_hours BETWEEN 0 AND {DELAY_HOURS_MAX}", name="delay_hours_range"),
        Index(
            f"uq_{table}_template_id_step_number_active",
            "template_id",
            "step_number",
            unique=True,
            postgresql_where=text("is_active"),
        ),
        Index(f"ix_{table}_template_id_step_number", "template_id", "step_number"),
    )


class EmailStep(_StepColumns, Base):
    __tablename__ = "email_steps"

    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    ab_variant: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        *_step_table_args("email_steps"),
        CheckConstraint(
            f"subject IS NULL OR char_length(subject) <= {SUBJECT_MAX}", name="subject_length"
        ),
        CheckConstraint(f"char_length(body) BETWEEN {BODY_MIN} AND {BODY_MAX}", name="body_length"),
        CheckConstraint(
            f"ab_variant IS NULL OR char_length(ab_variant) BETWEEN 1 AND {AB_VARIANT_MAX}",
            name="ab_variant_length",
        ),
    )


class LinkedInStep(_StepColumns, Base):
    __tablename__ = "linkedin_steps"

    action: Mapped[LinkedInAction] = mapped_column(pg_enum(LinkedInAction, "linkedin_action"))
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        *_step_table_args("linkedin_steps"),
        CheckConstraint(
            f"message IS NULL OR char_length(message) <= {LINKEDIN_MESSAGE_MAX}",
            name="message_length",
        ),
        CheckConstraint(
            "action <> 'message' OR char_length(btrim(coalesce(message, ''))) > 0",
            name="message_required",
        ),
        CheckConstraint(
            f"action <> 'connection_request' OR message IS NULL"
            f" OR char_length(message) <= {CONNECTION_NOTE_MAX}",
            name="connection_note_length",
        ),
        CheckConstraint(
            "action <> 'profile_visit' OR coalesce(message, '') = ''",
            name="profile_visit_no_message",
        ),
    )
