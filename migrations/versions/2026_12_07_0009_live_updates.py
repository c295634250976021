"""live updates: the instance activity stream and the triggers that write and announce it

Revision ID: 20261207_0009_live_updates
Revises: 20261207_0008_erasure
Create Date: 2026-12-07 17:45:00.000000

Every write path (webhooks, batched ingestion, recordEvent, the sender, lifecycle mutations, the
CLI) goes through these statement-level triggers, so none can forget to announce its change:
each statement appends one activity row per changed row (one INSERT … SELECT from the transition
table) and NOTIFYs ``campaign_activity`` once per distinct instance, in the writing transaction
(a NOTIFY is delivered only if it commits). Payloads are instance ids, never rows.

``xid`` is the writing transaction's id (an xid8, as bigint: it never reaches 2^63): readers deliver only rows of transactions older than
the oldest one still running (``pg_snapshot_xmin``), in ``(xid, seq)`` order, so a row that
commits late can never land behind a cursor a reader already passed.

The table is bounded by age: ``app.services.live.activity.prune`` deletes rows older than
``CAMPAIGN_LIVE_ACTIVITY_RETENTION_H`` (the API processes run it hourly); the BRIN index on
``at`` keeps that delete cheap and costs the writers almost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_0009_live_updates"
down_revision: str | None = "20261207_0008_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "campaign_activity"
OUTCOMES = "('sent', 'failed', 'unknown', 'cancelled')"

TABLE = """
CREATE TABLE instance_activity (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint,
    instance_id uuid NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    enrollment_id uuid,
    event_id uuid,
    dispatch_id uuid,
    status text,
    CONSTRAINT ck_instance_activity_kind_known
        CHECK (kind IN ('event', 'enrollment_status', 'dispatch')),
    CONSTRAINT ck_instance_activity_kind_fields CHECK (
        (kind = 'event' AND event_id IS NOT NULL)
        OR (kind = 'enrollment_status' AND enrollment_id IS NOT NULL AND status IS NOT NULL)
        OR (kind = 'dispatch' AND dispatch_id IS NOT NULL AND status IS NOT NULL)
    )
)
"""
# No foreign keys: instances, enrollments, events and dispatches are never deleted (RESTRICT
# everywhere), and a key check per appended row would be paid by every ingestion statement.
# No primary key either (``seq`` is unique by its identity, and only read through the position
# index): one index fewer for every appended row. Nor an index on event_id: resuming ``after`` an event id reads that instance's items through
# the position index; every appended row would pay for one more index.
INDEXES = (
    "CREATE INDEX ix_instance_activity_instance_position"
    " ON instance_activity (instance_id, xid, seq)",
    "CREATE INDEX ix_instance_activity_at ON instance_activity USING brin (at)",
)


def _function(name: str, appended: str) -> str:
    """A trigger function: append ``appended`` (a SELECT of the activity columns), then one
    NOTIFY per distinct instance it appended for."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    announced bigint;
    writer bigint := pg_current_xact_id()::text::bigint;
BEGIN
    WITH appended AS (
        INSERT INTO instance_activity
            (xid, instance_id, kind, at, enrollment_id, event_id, dispatch_id, status)
        SELECT writer, a.* FROM ({appended}) a
        RETURNING instance_id
    )
    SELECT count(pg_notify('{CHANNEL}', d.instance_id::text)) INTO announced
    FROM (SELECT DISTINCT instance_id FROM appended) d;
    RETURN NULL;
END $$
"""


FUNCTIONS = {
    "live_events_inserted": _function(
        "live_events_inserted",
        "SELECT n.instance_id, 'event', n.created_at, n.enrollment_id, n.id, NULL::uuid, NULL::text"
        " FROM new_rows n WHERE n.instance_id IS NOT NULL",
    ),
    # An orphan event linked to its enrollment later (app.services.ingestion.orphans) is new
    # activity of that instance then.
    "live_events_linked": _function(
        "live_events_linked",
        "SELECT n.instance_id, 'event', now(), n.enrollment_id, n.id, NULL::uuid, NULL::text"
        " FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE o.instance_id IS NULL AND n.instance_id IS NOT NULL",
    ),
    "live_enrollments_changed": _function(
        "live_enrollments_changed",
        "SELECT n.instance_id, 'enrollment_status', now(), n.id, NULL::uuid, NULL::uuid, n.status::text"
        " FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE n.status <> o.status",
    ),
    "live_dispatches_inserted": _function(
        "live_dispatches_inserted",
        "SELECT n.instance_id, 'dispatch', now(), n.enrollment_id, NULL::uuid, n.id, n.status::text"
        f" FROM new_rows n WHERE n.status::text IN {OUTCOMES}",
    ),
    "live_dispatches_changed": _function(
        "live_dispatches_changed",
        "SELECT n.instance_id, 'dispatch', now(), n.enrollment_id, NULL::uuid, n.id, n.status::text"
        " FROM new_rows n JOIN old_rows o ON o.id = n.id"
        f" WHERE n.status <> o.status AND n.status::text IN {OUTCOMES}",
    ),
}

# An instance's own status changes leave no activity row (instanceStatus shows the instance
# as it is now); its transition row is announced so instanceStatus subscribers hear of it.
TRANSITIONS_FUNCTION = f"""
CREATE FUNCTION live_instance_transitioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    announced bigint;
BEGIN
    SELECT count(pg_notify('{CHANNEL}', d.instance_id::text)) INTO announced
    FROM (SELECT DISTINCT instance_id FROM new_rows) d;
    RETURN NULL;
END $$
"""

TRIGGERS = (
    ("campaign_events", "INSERT", "REFERENCING NEW TABLE AS new_rows", "live_events_inserted"),
    (
        "campaign_events",
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "live_events_linked",
    ),
    (
        "enrollments",
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "live_enrollments_changed",
    ),
    ("dispatches", "INSERT", "REFERENCING NEW TABLE AS new_rows", "live_dispatches_inserted"),
    (
        "dispatches",
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "live_dispatches_changed",
    ),
    (
        "instance_transitions",
        "INSERT",
        "REFERENCING NEW TABLE AS new_rows",
        "live_instance_transitioned",
    ),
)


def _trigger_name(table: str, event: str) -> str:
    return f"tr_{table}_live_{event.lower()}"


def upgrade() -> None:
    op.execute(TABLE)
    for index in INDEXES:
        op.execute(index)
    for function in FUNCTIONS.values():
        op.execute(function)
    op.execute(TRANSITIONS_FUNCTION)
    for table, event, referencing, function_name in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table}"
            f" {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function_name}()"
        )


def downgrade() -> None:
    for table, event, _referencing, _function_name in TRIGGERS:
        op.execute(f"DROP TRIGGER {_trigger_name(table, event)} ON {table}")
    for name in (*FUNCTIONS, "live_instance_transitioned"):
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP TABLE instance_activity")
