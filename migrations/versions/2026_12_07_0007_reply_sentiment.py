"""reply sentiment: reply classifications, the sentiment of replies and enrollments derived
from them, and an out-of-office reply allowed to put its enrollment back to active

Revision ID: 20261207_0007_reply_sentiment
Revises: 20261207_0006_cross_campaign
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_0007_reply_sentiment"
down_revision: str | None = "20261207_0006_cross_campaign"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENTIMENTS = (
    "'interested', 'not_interested', 'out_of_office', 'wrong_person', "
    "'unsubscribe_request', 'unknown'"
)
PROVIDER = postgresql.ENUM(
    "lemlist", "postmark", "phantombuster", "api", name="provider", create_type=False
)

# A reply's sentiment is its latest classification (its own, or its enrollment's from a
# provider), by classified_at then id; an enrollment's is its latest reply's. A running
# enrollment whose latest reply says anything but out_of_office is stopped, as any reply stops
# it (an out-of-office reply reclassified otherwise stops the sequence it had reopened). It
# reads stored rows only: the same rows give the same state whatever order they came in.
REFRESH = """
CREATE FUNCTION refresh_reply_sentiments(ids uuid[]) RETURNS void LANGUAGE sql AS $$
WITH best AS (
    SELECT DISTINCT ON (r.id) r.id, c.sentiment, c.classified_by, c.classified_at, c.return_date
    FROM campaign_events r
    JOIN reply_classifications c
      ON c.enrollment_id = r.enrollment_id AND (c.event_id = r.id OR c.event_id IS NULL)
    WHERE r.enrollment_id = ANY(ids) AND r.event_type = 'replied'
    ORDER BY r.id, c.classified_at DESC, c.id DESC
)
UPDATE campaign_events e
   SET sentiment = b.sentiment, sentiment_by = b.classified_by,
       sentiment_at = b.classified_at, return_date = b.return_date
  FROM best b
 WHERE e.id = b.id
   AND (e.sentiment, e.sentiment_by, e.sentiment_at, e.return_date)
       IS DISTINCT FROM (b.sentiment, b.classified_by, b.classified_at, b.return_date);
UPDATE enrollments n SET sentiment = l.sentiment
  FROM (SELECT DISTINCT ON (r.enrollment_id) r.enrollment_id, r.sentiment
          FROM campaign_events r
         WHERE r.enrollment_id = ANY(ids) AND r.event_type = 'replied'
         ORDER BY r.enrollment_id, r.occurred_at DESC, r.id DESC) l
 WHERE n.id = l.enrollment_id AND n.sentiment IS DISTINCT FROM l.sentiment;
UPDATE enrollments n SET status = 'replied', next_action_at = NULL
 WHERE n.id = ANY(ids) AND n.status IN ('enrolled', 'active', 'paused')
   AND n.sentiment IS NOT NULL AND n.sentiment <> 'out_of_office';
$$
"""
# A reply (stored, or an orphan relinked) takes the classifications already there: the
# provider's may come first. Row-level and AFTER: it runs once the storing statement locked
# the enrollment, and sees every classification committed before that lock was granted.
# An enrollment without any classification has nothing to refresh (no reply of it can carry
# a sentiment, and it has none), so the common case costs one index probe: running the
# refresh for every reply halved batched webhook ingestion (bench.ingest, 3% replies).
REPLY_TRIGGER_FUNCTION = """
CREATE FUNCTION reply_takes_sentiment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM reply_classifications WHERE enrollment_id = NEW.enrollment_id) THEN
        PERFORM refresh_reply_sentiments(ARRAY[NEW.enrollment_id]);
    END IF;
    RETURN NULL;
END $$
"""
REPLY_TRIGGER = """
CREATE TRIGGER trg_campaign_events_reply_sentiment
AFTER INSERT OR UPDATE OF enrollment_id ON campaign_events
FOR EACH ROW WHEN (NEW.event_type = 'replied' AND NEW.enrollment_id IS NOT NULL)
EXECUTE FUNCTION reply_takes_sentiment()
"""
# 0003's guard, plus one way down the ladder: a replied enrollment whose latest reply is out
# of office may run again (domain.md, "Replies").
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
       AND NOT (OLD.status = 'replied' AND NEW.status = 'active'
                AND NEW.sentiment IS NOT DISTINCT FROM 'out_of_office')
    THEN
        RAISE EXCEPTION 'enrollment % is %; it cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'enrollment_status_precedence';
    END IF;
    RETURN NEW;
END $$
"""
PREVIOUS_STATUS_GUARD = STATUS_GUARD.replace(
    """
       AND NOT (OLD.status = 'replied' AND NEW.status = 'active'
                AND NEW.sentiment IS NOT DISTINCT FROM 'out_of_office')""",
    "",
)
assert PREVIOUS_STATUS_GUARD != STATUS_GUARD


def upgrade() -> None:
    for column in ("sentiment", "sentiment_by"):
        op.add_column("campaign_events", sa.Column(column, sa.Text(), nullable=True))
    for column in ("sentiment_at", "return_date"):
        op.add_column(
            "campaign_events", sa.Column(column, sa.DateTime(timezone=True), nullable=True)
        )
    op.add_column("enrollments", sa.Column("sentiment", sa.Text(), nullable=True))
    checks = {
        ("campaign_events", "sentiment_known"): (
            f"sentiment IS NULL OR sentiment IN ({SENTIMENTS})"
        ),
        ("campaign_events", "sentiment_only_on_replies"): (
            "sentiment IS NULL OR event_type = 'replied'"
        ),
        ("campaign_events", "sentiment_classified"): (
            "(sentiment IS NULL) = (sentiment_by IS NULL)"
            " AND (sentiment IS NULL) = (sentiment_at IS NULL)"
        ),
        ("campaign_events", "return_date_out_of_office"): (
            "return_date IS NULL OR sentiment = 'out_of_office'"
        ),
        ("enrollments", "sentiment_known"): f"sentiment IS NULL OR sentiment IN ({SENTIMENTS})",
    }
    for (table, name), condition in checks.items():
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)
    op.create_table(
        "reply_classifications",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("sentiment", sa.Text(), nullable=False),
        sa.Column("return_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider", PROVIDER, nullable=False),
        sa.Column("provider_event_id", sa.Text(), nullable=True),
        sa.Column("classified_by", sa.Text(), nullable=False),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=False),
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
            f"sentiment IN ({SENTIMENTS})",
            name=op.f("ck_reply_classifications_sentiment_known"),
        ),
        sa.CheckConstraint(
            "return_date IS NULL OR sentiment = 'out_of_office'",
            name=op.f("ck_reply_classifications_return_date_out_of_office"),
        ),
        sa.CheckConstraint(
            "(provider = 'api') = (event_id IS NOT NULL)",
            name=op.f("ck_reply_classifications_api_names_its_reply"),
        ),
        sa.CheckConstraint(
            "provider_event_id IS NULL OR char_length(provider_event_id) BETWEEN 1 AND 255",
            name=op.f("ck_reply_classifications_provider_event_id_length"),
        ),
        sa.CheckConstraint(
            "char_length(classified_by) BETWEEN 1 AND 255",
            name=op.f("ck_reply_classifications_classified_by_length"),
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_reply_classifications_enrollment_id_enrollments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["campaign_events.id"],
            name=op.f("fk_reply_classifications_event_id_campaign_events"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_classifications")),
    )
    op.create_index(
        op.f("ix_reply_classifications_enrollment_id_classified_at"),
        "reply_classifications",
        ["enrollment_id", "classified_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_reply_classifications_event_id"),
        "reply_classifications",
        ["event_id"],
        unique=False,
    )
    op.create_index(
        "uq_reply_classifications_provider_provider_event_id",
        "reply_classifications",
        ["provider", "provider_event_id"],
        unique=True,
        postgresql_where=sa.text("provider_event_id IS NOT NULL"),
    )
    op.execute(
        "CREATE TRIGGER trg_reply_classifications_updated_at BEFORE UPDATE ON"
        " reply_classifications FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )
    op.execute(REFRESH)
    op.execute(REPLY_TRIGGER_FUNCTION)
    op.execute(REPLY_TRIGGER)
    op.execute(STATUS_GUARD)


def downgrade() -> None:
    op.execute(PREVIOUS_STATUS_GUARD)
    op.execute("DROP FUNCTION reply_takes_sentiment() CASCADE")
    op.execute("DROP FUNCTION refresh_reply_sentiments(uuid[])")
    op.drop_table("reply_classifications")
    op.drop_constraint(op.f("ck_enrollments_sentiment_known"), "enrollments", type_="check")
    op.drop_column("enrollments", "sentiment")
    for name in (
        "return_date_out_of_office",
        "sentiment_classified",
        "sentiment_only_on_replies",
        "sentiment_known",
    ):
        op.drop_constraint(op.f(f"ck_campaign_events_{name}"), "campaign_events", type_="check")
    for column in ("return_date", "sentiment_at", "sentiment_by", "sentiment"):
        op.drop_column("campaign_events", column)
