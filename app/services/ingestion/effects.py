"""What stored events do: count first outcomes, and move their enrollments, in the statement
that stores them.

Used for new events (``events.ingest``) and for orphans attached later (``orphans``). Both
store events with a statement returning the stored event's ``enrollment_id``, ``instance_id``,
``event_type``, ``channel``, ``step_number``, ``occurred_at`` and ``bounce_type`` (Postmark's
``Type`` of a bounce, kept in metadata); ``with_effects`` wraps it in
data-modifying CTEs that count the first outcomes and move the enrollments: one CTE per step
an event goes through, each built by the function named after it (``_stored`` to ``_moved``),
in statement order. One statement is one round trip, and on its own (outside a transaction)
it is its own transaction: a batch costs the database and the server one exchange instead of
six (BEGIN, lookups, lock, update, COMMIT), which was most of the per-batch cost.

An unsubscribe, a spam complaint or a hard bounce also puts the enrollment's address on the
suppression list, and stops every running enrollment with that address in any instance (they
join the enrollments the statement moves, as if they had reported the same outcome).

Lock order, the same in every transaction so that batches cannot deadlock: event keys, then
outcome keys, then counter shards, then suppression keys (each in sorted order), then
enrollment rows in id order.
Enrollment rows are locked FOR NO KEY UPDATE, which does not conflict with the KEY SHARE locks
that inserting events and outcomes (foreign keys to enrollments) take.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.addresses import ADDRESS_MAX, metadata_address_sql
from app.domain.counters import COUNTER_OF, OUTCOME_COUNTERS, SENT_TYPES, STATUS_OF
from app.domain.enums import (
    TERMINAL_PRECEDENCE,
    Channel,
    EnrollmentStatus,
    EventType,
    SuppressionReason,
)
from app.services.sequence import next_step_sql

RUNNING = (EnrollmentStatus.ENROLLED, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)
FINAL = (EnrollmentStatus.FAILED, EnrollmentStatus.REMOVED)
"""Statuses nothing a provider reports changes (domain.md, decisions); their events are still
stored and counted, and still suppress."""
SUPPRESSING: dict[EventType, SuppressionReason] = {
    EventType.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
    EventType.SPAM_COMPLAINT: SuppressionReason.SPAM_COMPLAINT,
    EventType.BOUNCED: SuppressionReason.BOUNCED,
}
"""The events that put their address on the suppression list."""
SOFT_BOUNCES = (
    "Transient",
    "SoftBounce",
    "DnsError",
    "AutoResponder",
    "AddressChange",
    "ChallengeVerification",
    "OpenRelayTest",
    "VirusNotification",
    "SMTPApiError",
    "InboundError",
    "DMARCPolicy",
    "TemplateRenderingFailed",
    "Blocked",
)
"""Postmark bounce ``Type``s that say nothing about the address: they do not suppress."""


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _rank_of(expression: str) -> str:
    """SQL: the precedence of the status ``expression``; -1 for a status still running."""
    ranks = " ".join(f"WHEN '{s}' THEN {rank}" for s, rank in TERMINAL_PRECEDENCE.items())
    return f"CASE {expression} {ranks} ELSE -1 END"


_TARGET_RANKS = {TERMINAL_PRECEDENCE[status]: status for status in STATUS_OF.values()}
assert len(_TARGET_RANKS) == len(set(STATUS_OF.values())), "one rank per status an event sets"


def _stored(storing: str) -> str:
    """The event, as the caller's statement stored (or relinked) it."""
    return f"stored AS ({storing})"


def _new_outcomes() -> str:
    """Its outcome, recorded unless already there: only a first outcome comes back."""
    counter_rows = ", ".join(f"('{t.value}', '{c}')" for t, c in COUNTER_OF.items())
    return f"""new_outcomes AS (
        INSERT INTO event_outcomes (enrollment_id, instance_id, channel, step_number, counter)
        SELECT DISTINCT s.enrollment_id, s.instance_id, s.channel::channel,
               coalesce(s.step_number, 0), c.counter
        FROM stored s JOIN (VALUES {counter_rows}) AS c(event_type, counter)
          ON c.event_type = s.event_type
        WHERE s.enrollment_id IS NOT NULL
        ORDER BY 1, 3, 4, 5
        ON CONFLICT DO NOTHING
        RETURNING instance_id, counter
    )"""


def _counted(shard_parameter: int) -> str:
    """Each first outcome, added to its instance's counter shard (instances in id order)."""
    columns = ", ".join(OUTCOME_COUNTERS)
    counts = ", ".join(f"count(*) FILTER (WHERE counter = '{c}')" for c in OUTCOME_COUNTERS)
    added = ", ".join(f"{c} = instance_counter_shards.{c} + excluded.{c}" for c in OUTCOME_COUNTERS)
    return f"""counted AS (
        INSERT INTO instance_counter_shards (instance_id, shard, {columns})
        SELECT instance_id, ${shard_parameter}::smallint, {counts}
        FROM new_outcomes
        GROUP BY instance_id
        ORDER BY instance_id
        ON CONFLICT (instance_id, shard) DO UPDATE SET
            {added}
        RETURNING instance_id
    )"""


def _suppressing() -> str:
    """The address of an enrollment that unsubscribed, complained or hard-bounced (the first
    report of each address wins)."""
    reasons = " ".join(f"WHEN '{e.value}' THEN '{r.value}'" for e, r in SUPPRESSING.items())
    address = metadata_address_sql(Channel.EMAIL, "n.metadata")
    return f"""suppressing AS (
        SELECT DISTINCT ON (a.address) a.address, a.reason, a.event_id, a.occurred_at
        FROM (
            SELECT {address} AS address, CASE s.event_type {reasons} END AS reason,
                   s.id AS event_id, s.occurred_at
            FROM stored s JOIN enrollments n ON n.id = s.enrollment_id
            WHERE s.event_type IN ({_quoted(e.value for e in SUPPRESSING)})
              AND NOT (s.event_type = 'bounced'
                       AND coalesce(s.bounce_type, '') IN ({_quoted(SOFT_BOUNCES)}))
        ) a
        WHERE char_length(a.address) BETWEEN 3 AND {ADDRESS_MAX}
        ORDER BY a.address, a.occurred_at
    )"""


def _suppressed() -> str:
    """The address, added to the suppression list unless it is there; reading ``counted``
    puts the shard rows first."""
    return """suppressed AS (
        INSERT INTO suppressions (channel, address, reason, event_id)
        SELECT 'email', address, reason::suppression_reason, event_id FROM suppressing
        WHERE (SELECT count(*) FROM counted) >= 0
        ORDER BY address
        ON CONFLICT (channel, address) DO NOTHING
        RETURNING address, reason::text AS reason
    )"""


def _touches() -> str:
    """The event, if it moves its enrollment: the step a send reached, or the status reported;
    and every running enrollment elsewhere of an address it newly suppressed."""
    sent = _quoted(t.value for t in SENT_TYPES)
    moving = _quoted(t.value for t in [*SENT_TYPES, *STATUS_OF])
    target_rows = ", ".join(
        f"('{t.value}', '{status}', {TERMINAL_PRECEDENCE[status]})"
        for t, status in STATUS_OF.items()
    )
    stopped = {
        reason: EnrollmentStatus.BOUNCED
        if reason is SuppressionReason.BOUNCED
        else EnrollmentStatus.UNSUBSCRIBED
        for reason in SUPPRESSING.values()
    }
    stop_rows = ", ".join(
        f"('{r.value}', '{status}', {TERMINAL_PRECEDENCE[status]})" for r, status in stopped.items()
    )
    return f"""touches AS (
        SELECT s.enrollment_id, s.occurred_at,
               CASE WHEN s.event_type IN ({sent}) THEN s.step_number END AS sent_step,
               m.status AS target, m.rank
        FROM stored s LEFT JOIN (VALUES {target_rows}) AS m(event_type, status, rank)
          ON m.event_type = s.event_type
        WHERE s.enrollment_id IS NOT NULL AND s.event_type IN ({moving})
        UNION ALL
        SELECT o.id, g.occurred_at, NULL, m.status, m.rank
        FROM suppressed p
        JOIN suppressing g ON g.address = p.address
        JOIN (VALUES {stop_rows}) AS m(reason, status, rank) ON m.reason = p.reason
        JOIN enrollment_addresses a ON a.channel = 'email' AND a.address = p.address
        JOIN enrollments o ON o.id = a.enrollment_id AND o.status IN ({_quoted(RUNNING)})
    )"""


def _locked() -> str:
    """Its enrollment and template, locked in id order; reading ``counted`` puts shards first."""
    return """locked AS MATERIALIZED (
        SELECT e.id, e.status::text AS status, e.current_step, e.next_action_at,
               t.id AS template_id, t.type::text AS template_type
        FROM enrollments e
        JOIN campaign_instances i ON i.id = e.instance_id
        JOIN campaign_templates t ON t.id = i.template_id
        WHERE e.id IN (SELECT enrollment_id FROM touches)
          AND (SELECT count(*) FROM counted) >= 0
        ORDER BY e.id
        FOR NO KEY UPDATE OF e
    )"""


def _latest_sent() -> str:
    """Of the enrollment's sends here, the furthest step, at its latest touch."""
    return """latest_sent AS (
        SELECT DISTINCT ON (enrollment_id) enrollment_id, sent_step AS step, occurred_at
        FROM touches WHERE sent_step IS NOT NULL
        ORDER BY enrollment_id, sent_step DESC, occurred_at DESC
    )"""


def _terminal() -> str:
    """Of the enrollment's reported outcomes, the highest rank and the earliest unsubscribe."""
    return """terminal AS (
        SELECT enrollment_id, max(rank) AS rank,
               min(occurred_at) FILTER (WHERE target = 'unsubscribed') AS unsubscribed_at
        FROM touches WHERE target IS NOT NULL
        GROUP BY enrollment_id
    )"""


def _stepped() -> str:
    """The send against the enrollment: did it reach its step, and when is the next one due."""
    running = _quoted(RUNNING)
    following = next_step_sql("l.template_id", "l.template_type", "s.step")
    return f"""stepped AS (
        SELECT l.id, l.status AS old_status, l.current_step AS old_step,
               l.next_action_at AS old_next, greatest(l.current_step, s.step) AS step,
               s.step IS NOT NULL AND s.step >= l.current_step
                   AND l.status IN ({running}, 'completed') AS reached,
               coalesce(s.step > l.current_step, false) AS advanced,
               s.occurred_at AS touched_at, f.step_number AS following,
               s.occurred_at + make_interval(hours => f.delay_hours) AS due
        FROM locked l
        LEFT JOIN latest_sent s ON s.enrollment_id = l.id
        LEFT JOIN LATERAL ({following}) f ON true
    )"""


def _after_sent() -> str:
    """Its state after the send: completed past the last step, else due at the next one."""
    running = _quoted(RUNNING)
    return f"""after_sent AS (
        SELECT id, old_status, old_step, old_next, step,
               CASE WHEN reached AND following IS NULL AND old_status IN ({running})
                    THEN 'completed' ELSE old_status END AS status,
               CASE WHEN NOT reached OR old_status NOT IN ({running}) THEN old_next
                    WHEN following IS NULL THEN NULL
                    WHEN NOT advanced AND old_next > due THEN old_next
                    ELSE due END AS next_action_at,
               CASE WHEN reached AND following IS NULL THEN touched_at END AS completed_at
        FROM stepped
    )"""


def _next_state() -> str:
    """Over that, a reported terminal status that ranks higher, which ends the sequence
    (a failed or removed enrollment keeps its status)."""
    status_of_rank = "CASE t.rank {} END".format(
        " ".join(f"WHEN {rank} THEN '{status}'" for rank, status in _TARGET_RANKS.items())
    )
    reported = f"t.rank > {_rank_of('a.status')} AND a.status NOT IN ({_quoted(FINAL)})"
    return f"""next_state AS (
        SELECT a.id, a.old_status, a.old_step, a.old_next, a.step, a.completed_at,
               t.unsubscribed_at,
               CASE WHEN {reported} THEN {status_of_rank} ELSE a.status END AS status,
               CASE WHEN {reported} THEN NULL ELSE a.next_action_at END AS next_action_at
        FROM after_sent a LEFT JOIN terminal t ON t.enrollment_id = a.id
    )"""


def _moved() -> str:
    """The enrollment row, updated when its state changed."""
    return """moved AS (
        UPDATE enrollments e SET
            status = n.status::enrollment_status,
            current_step = n.step,
            next_action_at = n.next_action_at,
            completed_at = greatest(
                e.completed_at, CASE WHEN n.status = 'completed' THEN n.completed_at END),
            unsubscribed_at = least(
                e.unsubscribed_at, CASE WHEN n.status = 'unsubscribed' THEN n.unsubscribed_at END)
        FROM next_state n
        WHERE e.id = n.id
          AND (n.status <> n.old_status OR n.step <> n.old_step
               OR n.next_action_at IS DISTINCT FROM n.old_next
               OR (n.status = 'completed' AND n.completed_at IS NOT NULL)
               OR (n.status = 'unsubscribed' AND n.unsubscribed_at IS NOT NULL))
    )"""


def with_effects(storing: str, shard_parameter: int, returning: str) -> str:
    """``storing`` (a statement returning stored events with the columns the module docstring
    names), made to apply their effects in the same statement; it returns ``returning``, an
    expression list over the stored events (``s``).

    - First outcomes are inserted in key order; only new ones are counted, in the counter
      shard that parameter ``$shard_parameter`` names (one per statement).
    - The enrollments whose events move them are locked in id order, after the shard row
      (``locked`` waits for ``counted``), and updated when their state changes.

    An enrollment's next state does not depend on the order its events arrive in: the step
    only moves forward; a lower terminal status never overwrites a higher one; the next step
    is due after the LATEST touch of the current step (two touches of one step may arrive
    either way round); completion is dated by the latest touch of the last step, and an
    unsubscribe by the earliest report.
    """
    ctes = (
        _stored(storing),
        _new_outcomes(),
        _counted(shard_parameter),
        _suppressing(),
        _suppressed(),
        _touches(),
        _locked(),
        _latest_sent(),
        _terminal(),
        _stepped(),
        _after_sent(),
        _next_state(),
        _moved(),
    )
    return f"""
    WITH {", ".join(ctes)}
    SELECT {returning} FROM stored s
"""
