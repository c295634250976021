"""cross-campaign policy: the look-up index of open enrollments, why a moved enrollment was
removed, and the template setting's known values

Revision ID: 20261207_0006_cross_campaign
Revises: 20261207_0005_webhooks
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0006_cross_campaign"
down_revision: str | None = "20261207_0005_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('enrolled', 'active', 'paused')"
CHECKS = {
    "removal_reason_when_removed": (
        "removal_reason IS NULL OR (status = 'removed'"
        " AND char_length(removal_reason) BETWEEN 1 AND 500)"
    ),
    "moved_when_removed": (
        "moved_to_instance_id IS NULL OR (status = 'removed'"
        " AND moved_to_instance_id <> instance_id AND removal_reason IS NOT NULL)"
    ),
}
POLICY_CHECK = (
    "jsonb_typeof(settings) <> 'object' OR NOT settings ? 'cross_campaign_policy'"
    " OR settings -> 'cross_campaign_policy' IN"
    " ('\"allow\"'::jsonb, '\"skip\"'::jsonb, '\"move\"'::jsonb)"
)


def upgrade() -> None:
    op.create_check_constraint(
        op.f("ck_campaign_templates_cross_campaign_policy_known"),
        "campaign_templates",
        POLICY_CHECK,
    )
    op.add_column("enrollments", sa.Column("removal_reason", sa.Text(), nullable=True))
    op.add_column("enrollments", sa.Column("moved_to_instance_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_enrollments_moved_to_instance_id_campaign_instances"),
        "enrollments",
        "campaign_instances",
        ["moved_to_instance_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    for name, condition in CHECKS.items():
        op.create_check_constraint(op.f(f"ck_enrollments_{name}"), "enrollments", condition)
    op.create_index(
        "ix_enrollments_contact_id_open",
        "enrollments",
        ["contact_id"],
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_enrollments_contact_id_open", table_name="enrollments")
    for name in CHECKS:
        op.drop_constraint(op.f(f"ck_enrollments_{name}"), "enrollments", type_="check")
    op.drop_constraint(
        op.f("fk_enrollments_moved_to_instance_id_campaign_instances"),
        "enrollments",
        type_="foreignkey",
    )
    op.drop_column("enrollments", "moved_to_instance_id")
    op.drop_column("enrollments", "removal_reason")
    op.drop_constraint(
        op.f("ck_campaign_templates_cross_campaign_policy_known"),
        "campaign_templates",
        type_="check",
    )
