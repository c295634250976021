"""What stored events do: count first outcomes, and move their enrollments.

Used for new events (``events.ingest``) and for orphans attached later (``orphans``). Both
store events with a statement returning the stored event's ``enrollment_id``, ``instance_id``,
``event_type``, ``channel``, ``step_number`` and ``occurred_at``; ``with_outcomes_counted``
makes that statement count the first outcomes too (one round trip, not two), and
``apply_effects`` moves the enrollments. Lock order, as in ``events``: outcome keys, then
counter shards, then enrollment rows in id order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from app.domain.enums import TERMINAL_PRECEDENCE, EnrollmentStatus, EventType
from app.driver_sql import DriverConnection
from app.models.outcomes import COUNTERS

SENT_TYPES = frozenset(
    {
        EventType.SENT,
        EventType.MESSAGE_SENT,
        EventType.VOICE_MESSAGE_SENT,
        EventType.CONNECTION_REQUESTED,
        EventType.PROFILE_VISITED,
    }
)
COUNTER_OF: dict[str, str] = {
    **dict.fromkeys((t.value for t in SENT_TYPES), "sent"),
    EventType.DELIVERED.value: "delivered",
    EventType.OPENED.value: "opened",
    EventType.CLICKED.value: "clicked",
    EventType.REPLIED.value: "replied",
    EventType.BOUNCED.value: "bounced",
    EventType.UNSUBSCRIBED.value: "unsubscribed",
    EventType.SPAM_COMPLAINT.value: "unsubscribed",
}
"""Event type (as stored) → the counter its first outcome moves."""
STATUS_OF: dict[str, EnrollmentStatus] = {
    EventType.REPLIED.value: EnrollmentStatus.REPLIED,
    EventType.BOUNCED.value: EnrollmentStatus.BOUNCED,
    EventType.UNSUBSCRIBED.value: EnrollmentStatus.UNSUBSCRIBED,
    EventType.SPAM_COMPLAINT.value: EnrollmentStatus.UNSUBSCRIBED,
}
_SENT = frozenset(t.value for t in SENT_TYPES)
_MOVING = _SENT | STATUS_OF.keys()
COMPLETED = EnrollmentStatus.COMPLETED
_RUNNING = frozenset({EnrollmentStatus.ENROLLED, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED})

_COUNTS = ", ".join(f"count(*) FILTER (WHERE counter = '{c}')" for c in COUNTERS)
_COUNTER_ROWS = ", ".join(f"('{event}', '{counter}')" for event, counter in COUNTER_OF.items())


def with_outcomes_counted(storing: str, shard_parameter: int) -> str:
    """``storing`` (a statement returning stored events with the columns the module docstring
    names), made to record their first outcomes and move the counters in the same statement.

    Outcomes are inserted in key order, and only new ones are counted, in the shard that
    parameter ``$shard_parameter`` names (one per transaction). The statement returns what
    ``storing`` returns.
    """
    return f"""
    WITH stored AS ({storing}),
    new_outcomes AS (
        INSERT INTO event_outcomes (enrollment_id, instance_id, channel, step_number, counter)
        SELECT DISTINCT s.enrollment_id, s.instance_id, s.channel::channel,
               coalesce(s.step_number, 0), c.counter
        FROM stored s JOIN (VALUES {_COUNTER_ROWS}) AS c(event_type, counter)
          ON c.event_type = s.event_type
        WHERE s.enrollment_id IS NOT NULL
        ORDER BY 1, 3, 4, 5
        ON CONFLICT DO NOTHING
        RETURNING instance_id, counter
    ), counted AS (
        INSERT INTO instance_counter_shards (instance_id, shard, {", ".join(COUNTERS)})
        SELECT instance_id, ${shard_parameter}::smallint, {_COUNTS}
        FROM new_outcomes
        GROUP BY instance_id
        ORDER BY instance_id
        ON CONFLICT (instance_id, shard) DO UPDATE SET
            {", ".join(f"{c} = instance_counter_shards.{c} + excluded.{c}" for c in COUNTERS)}
    )
    SELECT * FROM stored
"""


_LOCK_ENROLLMENTS = """
    WITH locked AS (
        SELECT e.id, e.status::text AS status, e.current_step, e.next_action_at,
               t.id AS template_id, t.type::text AS template_type
        FROM enrollments e
        JOIN campaign_instances i ON i.id = e.instance_id
        JOIN campaign_templates t ON t.id = i.template_id
        WHERE e.id = ANY($1::uuid[])
        ORDER BY e.id
        FOR NO KEY UPDATE OF e
    ), active AS (
        SELECT es.template_id, es.step_number, es.delay_hours FROM email_steps es
        WHERE $2 AND es.is_active AND es.template_id IN (
            SELECT template_id FROM locked WHERE template_type IN ('email', 'multi_channel'))
        UNION ALL
        SELECT ls.template_id, ls.step_number, ls.delay_hours FROM linkedin_steps ls
        WHERE $2 AND ls.is_active AND ls.template_id IN (
            SELECT template_id FROM locked WHERE template_type IN ('linkedin', 'multi_channel'))
    ), steps AS (
        SELECT template_id, step_number, min(delay_hours) AS delay_hours
        FROM active GROUP BY template_id, step_number
    ), sequences AS (
        SELECT template_id, array_agg(step_number ORDER BY step_number) AS step_numbers,
               array_agg(delay_hours ORDER BY step_number) AS delays
        FROM steps GROUP BY template_id
    )
    SELECT l.id, l.status, l.current_step, l.next_action_at, s.step_numbers, s.delays
    FROM locked l LEFT JOIN sequences s USING (template_id)
    ORDER BY l.id
"""
"""The enrollments, locked in id order, with their template's active steps (the smallest delay
where two channels share a step number), read once per template, when ``$2`` says sent events
need them."""

_UPDATE_ENROLLMENTS = """
    UPDATE enrollments e SET
        status = u.status::enrollment_status,
        current_step = u.current_step,
        next_action_at = u.next_action_at,
        completed_at = greatest(e.completed_at, u.completed_at),
        unsubscribed_at = least(e.unsubscribed_at, u.unsubscribed_at)
    FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[],
                $6::timestamptz[])
         AS u(id, status, current_step, next_action_at, completed_at, unsubscribed_at)
    WHERE e.id = u.id
"""


def _rank(status: EnrollmentStatus) -> int:
    return TERMINAL_PRECEDENCE.get(status, -1)


async def apply_effects(db: DriverConnection, linked: Sequence[Any]) -> None:
    """Lock only the enrollments whose events change them, in id order, and update them."""
    effects: dict[str, list[Any]] = defaultdict(list)
    for row in linked:
        if row["event_type"] in _MOVING:
            effects[str(row["enrollment_id"])].append(row)
    if not effects:
        return
    any_sent = any(r["event_type"] in _SENT for rows in effects.values() for r in rows)
    locked = await db.fetch(_LOCK_ENROLLMENTS, sorted(effects), any_sent)
    updates: list[tuple[Any, ...]] = []
    for enrollment in locked:
        changed = _next_state(enrollment, effects[str(enrollment["id"])])
        if changed is not None:
            updates.append((enrollment["id"], *changed))
    if updates:
        await db.execute(_UPDATE_ENROLLMENTS, *zip(*updates, strict=True))


def _next_state(enrollment: Any, events: list[Any]) -> tuple[Any, ...] | None:
    """The enrollment's (status, step, next action, completion, unsubscription) after these
    events, or None when they change nothing.

    The result does not depend on arrival order: the step only moves forward, a lower terminal
    status never overwrites a higher one, the next step is due after the LATEST touch of the
    current step (two touches of one step may arrive either way round), completion is dated by
    the latest touch of the last step and an unsubscribe by the earliest report.
    """
    status = EnrollmentStatus(enrollment["status"])
    step = enrollment["current_step"]
    next_action_at = enrollment["next_action_at"]
    completed_at = unsubscribed_at = None
    sent = [e for e in events if e["event_type"] in _SENT and e["step_number"]]
    if sent:
        latest = max(sent, key=lambda e: (e["step_number"], e["occurred_at"]))
        latest_step = latest["step_number"]
        advanced = latest_step > step
        step = max(step, latest_step)
        if latest_step == step and (status in _RUNNING or status is COMPLETED):
            steps = zip(enrollment["step_numbers"] or (), enrollment["delays"] or (), strict=True)
            following = [delay for number, delay in steps if number > step]
            if not following:
                completed_at = latest["occurred_at"]
                if status in _RUNNING:
                    status, next_action_at = COMPLETED, None
            elif status in _RUNNING:
                due = latest["occurred_at"] + timedelta(hours=following[0])
                keep = not advanced and next_action_at is not None and next_action_at > due
                next_action_at = next_action_at if keep else due
    for event in events:
        target = STATUS_OF.get(event["event_type"])
        if target is not None and _rank(target) > _rank(status):
            status, next_action_at = target, None
        if target is EnrollmentStatus.UNSUBSCRIBED:
            unsubscribed_at = min(filter(None, (unsubscribed_at, event["occurred_at"])))
    if status is not EnrollmentStatus.UNSUBSCRIBED:
        unsubscribed_at = None
    if status is not COMPLETED:
        completed_at = None
    unchanged = (
        status.value == enrollment["status"]
        and step == enrollment["current_step"]
        and next_action_at == enrollment["next_action_at"]
        and unsubscribed_at is None
        and completed_at is None
    )
    if unchanged:
        return None
    return status.value, step, next_action_at, completed_at, unsubscribed_at
