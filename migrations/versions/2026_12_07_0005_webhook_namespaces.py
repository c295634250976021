"""webhook namespaces: events reported through the API are deduplicated apart from a
provider's own, so a key holder cannot make a real delivery a duplicate (issue 24)

Revision ID: 20261207_0005_webhooks
Revises: 20261207_0004_api_keys
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0005_webhooks"
down_revision: str | None = "20261207_0004_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "uq_campaign_events_provider_provider_event_id"
NEW_INDEX = "uq_campaign_events_provider_provider_event_id_via_api"
WITH_ID = sa.text("provider_event_id IS NOT NULL")


def upgrade() -> None:
    op.add_column(
        "campaign_events",
        sa.Column("via_api", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    # Until now only the generic webhook and recordEvent wrote provider 'api': their repeats
    # must still find the events stored before the upgrade.
    op.execute("UPDATE campaign_events SET via_api = true WHERE provider = 'api'")
    op.create_index(
        NEW_INDEX,
        "campaign_events",
        ["provider", "provider_event_id", "via_api"],
        unique=True,
        postgresql_where=WITH_ID,
    )
    op.drop_index(OLD_INDEX, table_name="campaign_events", postgresql_where=WITH_ID)


def downgrade() -> None:
    # Fails with a unique violation, storing nothing, when a provider's event id was also
    # reported through the API since the upgrade: the old key cannot hold both.
    op.create_index(
        OLD_INDEX,
        "campaign_events",
        ["provider", "provider_event_id"],
        unique=True,
        postgresql_where=WITH_ID,
    )
    op.drop_index(NEW_INDEX, table_name="campaign_events", postgresql_where=WITH_ID)
    op.drop_column("campaign_events", "via_api")
