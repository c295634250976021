"""live trigger plans: the activity triggers that join a statement's old and new rows never
join them with a nested loop

Revision ID: 20261207_0012_live_trigger_plans
Revises: 20261207_0011_key_revocation
Create Date: 2026-12-07 23:40:00.000000

PL/pgSQL parses a trigger function's query once per session, and the parsed query keeps the
row count each transition table had then: every later plan (custom ones included) estimates
with that count. A sender's claim updates no enrollment (the trigger fires with zero rows),
so in a sender's sessions the join of the old and new rows was planned for one row each, as a
nested loop; the recording that followed, with 500 rows, compared 250,000 pairs (30 ms of a
75 ms statement), and a bulk update of 10,000 enrollments would compare 100 million. Without
nested loops the join is a hash join whatever the count (the functions' only join).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_0012_live_trigger_plans"
down_revision: str | None = "20261207_0011_key_revocation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOINING = ("live_events_linked", "live_enrollments_changed", "live_dispatches_changed")
"""The trigger functions whose query joins ``old_rows`` to ``new_rows``."""


def upgrade() -> None:
    for name in JOINING:
        op.execute(f"ALTER FUNCTION {name}() SET enable_nestloop = off")


def downgrade() -> None:
    for name in JOINING:
        op.execute(f"ALTER FUNCTION {name}() RESET enable_nestloop")
