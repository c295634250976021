"""LinkedIn addresses lose ``www.`` with or without a scheme: the suppressions CHECK and the
running-address index follow the new normalized form; suppressions already stored are moved
to it (two that now name one profile become one, the oldest kept)

Revision ID: 20261207_0004
Revises: 20261207_0003
Create Date: 2026-12-07 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0004"
down_revision: str | None = "20261207_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PREFIX = "'^https?://(www\\.)?'"
NEW_PREFIX = "'^(https?://|www\\.)*'"
RUNNING = sa.text("status IN ('enrolled', 'active', 'paused')")


def _normalized(expression: str, prefix: str) -> str:
    return (
        "rtrim(split_part(split_part(regexp_replace("
        f"lower(btrim({expression})), {prefix}, ''), '?', 1), '#', 1), '/')"
    )


def _use(prefix: str) -> None:
    op.create_check_constraint(
        op.f("ck_suppressions_linkedin_normalized"),
        "suppressions",
        f"channel <> 'linkedin' OR address = {_normalized('address', prefix)}",
    )
    op.create_index(
        "ix_enrollments_running_linkedin_address",
        "enrollments",
        [sa.literal_column(_normalized("metadata ->> 'linkedin_url'", prefix))],
        unique=False,
        postgresql_where=RUNNING,
    )


def _drop() -> None:
    op.drop_index(
        "ix_enrollments_running_linkedin_address",
        table_name="enrollments",
        postgresql_where=RUNNING,
    )
    op.drop_constraint(op.f("ck_suppressions_linkedin_normalized"), "suppressions", type_="check")


def upgrade() -> None:
    _drop()
    new = _normalized("address", NEW_PREFIX)
    op.execute(
        f"""
        DELETE FROM suppressions s USING (
            SELECT id, row_number() OVER (
                PARTITION BY {new} ORDER BY address = {new} DESC, created_at, id) AS n
            FROM suppressions WHERE channel = 'linkedin'
        ) r
        WHERE s.id = r.id AND r.n > 1
        """
    )
    op.execute(
        f"UPDATE suppressions SET address = {new} WHERE channel = 'linkedin' AND address <> {new}"
    )
    _use(NEW_PREFIX)


def downgrade() -> None:
    # Every address in the new form is also in the old one (no scheme, no query, no slash).
    _drop()
    _use(OLD_PREFIX)
