"""erasure: enrollments.erased_at, hashed suppressions, the erasure audit, and a trigger that
keeps an erased address out of the suppression list in clear

Revision ID: 20261207_0008_erasure
Revises: 20261207_0007_reply_sentiment
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_0008_erasure"
down_revision: str | None = "20261207_0007_reply_sentiment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = postgresql.ENUM("email", "linkedin", name="channel", create_type=False)
SHA256_HEX = "^[0-9a-f]{64}$"
NEW_TABLES = ("hashed_suppressions", "contact_erasures")
# A suppression in clear of an erased address is dropped, whoever writes it (an unsubscribe
# webhook racing the erasure read the address before the erasure committed): the hashed
# suppression already stands for it. VOLATILE, so it reads what committed before it ran.
SKIP_ERASED = """
CREATE OR REPLACE FUNCTION suppressions_skip_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM hashed_suppressions h
               WHERE h.channel = NEW.channel
                 AND h.address_sha256 = encode(sha256(convert_to(NEW.address, 'UTF8')), 'hex'))
    THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.add_column("enrollments", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_enrollments_erased_holds_nothing"),
        "enrollments",
        "erased_at IS NULL OR (metadata = '{}'::jsonb AND contact_id ~ '^erased:[0-9a-f]{64}$')",
    )
    op.create_table(
        "hashed_suppressions",
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("address_sha256", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"address_sha256 ~ '{SHA256_HEX}'",
            name=op.f("ck_hashed_suppressions_address_sha256_hex"),
        ),
        sa.PrimaryKeyConstraint("channel", "address_sha256", name=op.f("pk_hashed_suppressions")),
    )
    op.create_table(
        "contact_erasures",
        sa.Column("contact_sha256", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("enrollments", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("dispatches", sa.Integer(), nullable=False),
        sa.Column("addresses", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.func.gen_random_uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"contact_sha256 ~ '{SHA256_HEX}'", name=op.f("ck_contact_erasures_contact_sha256_hex")
        ),
        sa.CheckConstraint(
            "char_length(btrim(actor)) BETWEEN 1 AND 255",
            name=op.f("ck_contact_erasures_actor_length"),
        ),
        sa.CheckConstraint(
            "enrollments >= 1", name=op.f("ck_contact_erasures_enrollments_positive")
        ),
        sa.CheckConstraint("events >= 0", name=op.f("ck_contact_erasures_events_non_negative")),
        sa.CheckConstraint(
            "dispatches >= 0", name=op.f("ck_contact_erasures_dispatches_non_negative")
        ),
        sa.CheckConstraint(
            "addresses >= 0", name=op.f("ck_contact_erasures_addresses_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_erasures")),
    )
    op.create_index(
        op.f("ix_contact_erasures_contact_sha256_erased_at"),
        "contact_erasures",
        ["contact_sha256", "erased_at"],
        unique=False,
    )
    for table in NEW_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    op.execute(SKIP_ERASED)
    op.execute(
        "CREATE TRIGGER trg_suppressions_skip_erased BEFORE INSERT OR UPDATE ON suppressions "
        "FOR EACH ROW EXECUTE FUNCTION suppressions_skip_erased()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_suppressions_skip_erased ON suppressions")
    op.execute("DROP FUNCTION suppressions_skip_erased()")
    op.drop_index(
        op.f("ix_contact_erasures_contact_sha256_erased_at"), table_name="contact_erasures"
    )
    op.drop_table("contact_erasures")
    op.drop_table("hashed_suppressions")
    op.drop_constraint(op.f("ck_enrollments_erased_holds_nothing"), "enrollments", type_="check")
    op.drop_column("enrollments", "erased_at")
