"""Claiming work: the statements by which a sender takes due touches, retries that are due, and
touches whose sender stopped answering, so that no two senders ever hold the same touch.

Every claim takes rows ``FOR UPDATE SKIP LOCKED`` (a sender never waits for another's rows, it
takes the next ones) and leaves them under a lease (``claimed_by``, ``claimed_until``) that the
sender renews while it works. From then on the dispatch rows carry the work; the send event's
effects set the enrollment's next step and its time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.db.driver import DriverConnection
from app.domain.addresses import metadata_address_sql
from app.domain.enums import Channel, LinkedInAction, Provider
from app.services.sequence import next_step_sql

EMAIL_ADDRESS = metadata_address_sql(Channel.EMAIL, "c.metadata")
LINKEDIN_ADDRESS = metadata_address_sql(Channel.LINKEDIN, "c.metadata")


@dataclass(frozen=True, slots=True)
class Eligible:
    """An instance a sender may claim for now: active, inside its window, with room left
    today, and a client for the provider of each channel it uses."""

    instance_id: uuid.UUID
    email_provider: Provider | None
    linkedin_provider: Provider | None
    lemlist_managed: frozenset[Channel]
    """Channels lemlist runs itself: only the first touch on them is ours (adding the lead)."""
    daily_limit: int | None = None
    local_day: date | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed touch with what rendering it needs."""

    dispatch_id: uuid.UUID
    enrollment_id: uuid.UUID
    instance_id: uuid.UUID
    contact_id: str
    channel: Channel
    step_number: int
    provider: Provider
    attempts: int
    due_at: datetime
    uncertain: bool
    sendable: bool
    """False when the enrollment stopped (or its instance cannot send now) since the touch
    was queued: an uncertain touch is still resolved, nothing is sent."""
    metadata: dict[str, Any]
    step_found: bool
    """False when the step was deactivated after the touch was queued."""
    subject: str | None
    body: str
    action: LinkedInAction | None


def _claimed(row: Any) -> Claimed:
    return Claimed(
        dispatch_id=row["id"],
        enrollment_id=row["enrollment_id"],
        instance_id=row["instance_id"],
        contact_id=row["contact_id"],
        channel=Channel(row["channel"]),
        step_number=row["step_number"],
        provider=Provider(row["provider"]),
        attempts=row["attempts"],
        due_at=row["due_at"],
        uncertain=row["uncertain"],
        sendable=row["sendable"],
        metadata=row["metadata"],
        step_found=row["step_found"],
        subject=row["subject"],
        body=row["body"],
        action=LinkedInAction(row["action"]) if row["action"] else None,
    )


_LOCK_QUOTAS = """
    INSERT INTO send_quotas AS q (instance_id, day, used)
    SELECT instance_id, day, 0 FROM unnest($1::uuid[], $2::date[]) AS u(instance_id, day)
    ORDER BY instance_id
    ON CONFLICT (instance_id, day) DO UPDATE SET used = q.used
    RETURNING q.instance_id, q.used
"""
"""Each limited instance's row for its local day, created if needed and locked (in id order)
until the claim commits: two senders cannot both spend an instance's last touches."""

_CONTENT = """
    SELECT k.id, k.enrollment_id, k.instance_id, e.contact_id, k.channel::text AS channel,
           k.step_number, k.provider::text AS provider, k.attempts, k.due_at, k.uncertain,
           {sendable} AS sendable, e.metadata,
           es.id IS NOT NULL OR ls.id IS NOT NULL AS step_found,
           es.subject, coalesce(es.body, ls.message, '') AS body, ls.action::text AS action
    FROM {claimed} k
    JOIN enrollments e ON e.id = k.enrollment_id
    JOIN campaign_instances i ON i.id = k.instance_id
    LEFT JOIN email_steps es ON k.channel = 'email' AND es.template_id = i.template_id
         AND es.step_number = k.step_number AND es.is_active
    LEFT JOIN linkedin_steps ls ON k.channel = 'linkedin' AND ls.template_id = i.template_id
         AND ls.step_number = k.step_number AND ls.is_active
"""
"""Each claimed touch with its enrollment's variables and its step's text (read at send time:
a step edited before the touch leaves is sent as edited)."""

DUE_CANDIDATES = """
        SELECT e.id, e.instance_id, e.current_step, e.next_action_at, e.metadata
        FROM enrollments e
        WHERE e.status = 'active' AND e.next_action_at IS NOT NULL AND e.next_action_at <= now()
          AND e.instance_id = ANY({instances}::uuid[])
          AND NOT EXISTS (SELECT 1 FROM dispatches d
                          WHERE d.enrollment_id = e.id AND d.status IN ('queued', 'sending'))
        ORDER BY e.next_action_at
        LIMIT {batch}
        FOR UPDATE OF e SKIP LOCKED"""
"""The claim query proper: up to a batch of due enrollments of the given instances, oldest
due first, through the partial due index, skipping rows another sender holds and enrollments
with a touch still open. Nothing else is joined here: with a join to the instances (or a
subquery for their ids) the planner misjudged how many rows match, gave up the index's order
and sorted every due row (30 ms instead of 3 at 10,000 due). The claim statement checks the
instances' status in its ``plan``: a candidate of an instance paused since the sender's plan
was read is locked, then left as it was."""

_CLAIM_DUE = f"""
    WITH plan AS (
        SELECT p.* FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                               $6::text[], $10::date[])
             AS p(instance_id, room, email_provider, linkedin_provider, email_mode,
                  linkedin_mode, day)
        JOIN campaign_instances ci ON ci.id = p.instance_id AND ci.status = 'active'
    ), candidates AS MATERIALIZED ({DUE_CANDIDATES.format(instances="$1", batch="$7")}
    ), hits AS (
        SELECT c.id, s.reason::text AS reason FROM candidates c JOIN plan p USING (instance_id)
        JOIN suppressions s ON s.channel = 'email' AND s.address = {EMAIL_ADDRESS}
        WHERE p.email_provider IS NOT NULL
        UNION ALL
        SELECT c.id, s.reason::text FROM candidates c JOIN plan p USING (instance_id)
        JOIN suppressions s ON s.channel = 'linkedin' AND s.address = {LINKEDIN_ADDRESS}
        WHERE p.linkedin_provider IS NOT NULL
    ), verdicts AS (
        SELECT id, CASE WHEN bool_and(reason = 'bounced') THEN 'bounced'
                        ELSE 'unsubscribed' END AS status
        FROM hits GROUP BY id
    ), stopped AS (
        UPDATE enrollments e SET status = v.status::enrollment_status, next_action_at = NULL,
               unsubscribed_at = CASE WHEN v.status = 'unsubscribed' THEN now()
                                      ELSE e.unsubscribed_at END
        FROM verdicts v WHERE e.id = v.id
        RETURNING e.id
    ), steps AS (
        SELECT c.id AS enrollment_id, c.instance_id, c.next_action_at AS due_at,
               i.template_id, n.step_number, p.room, p.email_provider, p.linkedin_provider,
               p.email_mode, p.linkedin_mode
        FROM candidates c
        JOIN plan p USING (instance_id)
        JOIN campaign_instances i ON i.id = c.instance_id
        JOIN campaign_templates tt ON tt.id = i.template_id
        LEFT JOIN LATERAL ({next_step_sql("i.template_id", "tt.type::text", "c.current_step")}) n
          ON true
        WHERE c.id NOT IN (SELECT id FROM verdicts)
    ), touches AS (
        SELECT s.enrollment_id, s.instance_id, s.due_at, s.room, x.channel, s.step_number,
               x.provider
        FROM steps s
        CROSS JOIN LATERAL (
            SELECT 'email'::channel AS channel, s.email_provider AS provider,
                   s.email_mode AS mode
            FROM email_steps es
            WHERE es.template_id = s.template_id AND es.is_active
              AND es.step_number = s.step_number AND s.email_provider IS NOT NULL
            UNION ALL
            SELECT 'linkedin'::channel, s.linkedin_provider, s.linkedin_mode
            FROM linkedin_steps ls
            WHERE ls.template_id = s.template_id AND ls.is_active
              AND ls.step_number = s.step_number AND s.linkedin_provider IS NOT NULL
        ) x
        WHERE NOT (x.mode = 'lemlist_managed' AND EXISTS (
            SELECT 1 FROM dispatches d
            WHERE d.enrollment_id = s.enrollment_id AND d.channel = x.channel))
    ), counted AS (
        SELECT t.*, count(*) OVER (PARTITION BY t.enrollment_id) AS touches_here,
               sum(1) OVER (PARTITION BY t.instance_id
                            ORDER BY t.due_at, t.enrollment_id
                            RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
        FROM touches t
    ), chosen AS (
        SELECT * FROM counted WHERE room IS NULL OR running <= room
    ), created AS (
        INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number, provider,
                                status, attempts, claimed_by, claimed_until, due_at)
        SELECT enrollment_id, instance_id, channel, step_number, provider::provider,
               'sending', 1, $8, now() + make_interval(secs => $9), due_at
        FROM chosen
        ORDER BY enrollment_id, channel
        ON CONFLICT (enrollment_id, channel, step_number) DO NOTHING
        RETURNING id, enrollment_id, instance_id, channel, step_number, provider, attempts,
                  due_at, uncertain
    ), taken AS (
        UPDATE enrollments e
        SET next_action_at = NULL,
            status = CASE WHEN s.step_number IS NULL THEN 'completed'::enrollment_status
                          ELSE e.status END,
            completed_at = CASE WHEN s.step_number IS NULL THEN now() ELSE e.completed_at END
        FROM steps s
        WHERE e.id = s.enrollment_id
          AND (s.step_number IS NULL
               OR NOT EXISTS (SELECT 1 FROM counted t WHERE t.enrollment_id = s.enrollment_id)
               OR (EXISTS (SELECT 1 FROM chosen t WHERE t.enrollment_id = s.enrollment_id)
                   AND NOT EXISTS (SELECT 1 FROM created d
                                   WHERE d.enrollment_id = s.enrollment_id)))
        RETURNING e.id
    ), spent AS (
        UPDATE send_quotas q SET used = q.used + n.touches
        FROM (SELECT instance_id, count(*) AS touches FROM created GROUP BY instance_id) n
        JOIN plan p USING (instance_id)
        WHERE q.instance_id = n.instance_id AND q.day = p.day
    )
    {_CONTENT.format(sendable="true", claimed="created")}
"""
"""One statement: lock up to a batch of due enrollments, stop the suppressed ones without a
touch, find each one's next step and its touches (one per channel with an active step of
that number; lemlist-run channels only once), keep the touches that fit each instance's room
for today, create their dispatches under this sender's lease, and count them against the day.

A claimed enrollment is not updated: its open dispatch keeps it out of later claims (the
anti-join in ``candidates``) until the send event's effects set its next step's time; an
update of 500 enrollment rows per batch (every index of the table) cost more than the rest of
the statement. Only enrollments with nothing to send leave the due index here: completed when
their steps ran out, or waiting when their touch belongs to lemlist or was already made."""

_CLAIM_RETRIES = f"""
    WITH picked AS (
        SELECT d.id FROM dispatches d
        JOIN enrollments e ON e.id = d.enrollment_id
        JOIN campaign_instances ci ON ci.id = d.instance_id
        WHERE d.status = 'queued' AND d.next_attempt_at <= now()
          AND d.instance_id = ANY($1::uuid[]) AND ci.status = 'active'
          AND e.status IN ('active', 'completed') AND e.erased_at IS NULL
        ORDER BY d.next_attempt_at
        LIMIT $2
        FOR UPDATE OF d SKIP LOCKED
    ), claimed AS (
        UPDATE dispatches d SET status = 'sending', attempts = d.attempts + 1,
               claimed_by = $3, claimed_until = now() + make_interval(secs => $4),
               next_attempt_at = NULL
        FROM picked WHERE d.id = picked.id
        RETURNING d.id, d.enrollment_id, d.instance_id, d.channel, d.step_number, d.provider,
                  d.attempts, d.due_at, d.uncertain
    )
    {_CONTENT.format(sendable="true", claimed="claimed")}
"""
"""Queued dispatches whose next attempt is due, of enrollments still active in instances that
may send now (and are active as the database has it: the plan may predate a pause). A
completed enrollment still takes a retry: the other channel's touch of its last step
completed it while this one waited."""

_CLAIM_ABANDONED = f"""
    WITH picked AS (
        SELECT d.id FROM dispatches d
        WHERE d.status = 'sending' AND d.claimed_until < now() AND d.claimed_by <> $3
        ORDER BY d.claimed_until
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE dispatches d SET claimed_by = $3,
               claimed_until = now() + make_interval(secs => $4),
               uncertain = CASE WHEN d.provider::text = ANY($5::text[]) THEN d.uncertain
                                ELSE true END
        FROM picked WHERE d.id = picked.id
        RETURNING d.id, d.enrollment_id, d.instance_id, d.channel, d.step_number, d.provider,
                  d.attempts, d.due_at, d.uncertain
    )
    {
    _CONTENT.format(
        sendable="e.status IN ('active', 'completed') AND e.erased_at IS NULL"
        " AND i.status = 'active' AND k.instance_id = ANY($1::uuid[])",
        claimed="claimed",
    )
}
"""
"""Touches whose sender's lease ran out (it was killed, or froze), taken over whatever their
enrollment became since. They may have reached the provider: for a provider that can be asked
or takes a touch twice harmlessly, they are taken over as uncertain; for one that can do
neither (parameter 5), the dead sender marked each touch uncertain just before it left, so a
touch not marked never left and is sent like any other. A sender never takes over its own
claims: it is still working on them, merely late renewing them."""


def _mode(eligible: Eligible, channel: Channel) -> str | None:
    provider = eligible.email_provider if channel is Channel.EMAIL else eligible.linkedin_provider
    if provider is None:
        return None
    return "lemlist_managed" if channel in eligible.lemlist_managed else "direct"


async def claim_due(
    db: DriverConnection,
    eligible: list[Eligible],
    batch: int,
    sender_id: str,
    lease_s: float,
) -> list[Claimed]:
    """Due touches of the eligible instances, in one transaction the caller holds."""
    if not eligible or batch <= 0:
        return []
    limited = [e for e in eligible if e.daily_limit is not None]
    used: dict[uuid.UUID, int] = {}
    if limited:
        rows = await db.fetch(
            _LOCK_QUOTAS, [e.instance_id for e in limited], [e.local_day for e in limited]
        )
        used = {row["instance_id"]: row["used"] for row in rows}
    plan = [
        e
        for e in eligible
        if e.daily_limit is None or e.daily_limit - used.get(e.instance_id, 0) > 0
    ]
    if not plan:
        return []
    # The due index read in its order, whatever the statistics say: right after a bulk
    # enrollment they still count a handful of due rows, and the planner chose to gather every
    # due row through a bitmap and sort them (30 ms at 20,000 due) instead of reading the first
    # 500 in order (under 4 ms). SET LOCAL: for the rest of the caller's transaction only.
    await db.execute("SET LOCAL enable_bitmapscan = off")
    rows = await db.fetch(
        _CLAIM_DUE,
        [e.instance_id for e in plan],
        [
            None if e.daily_limit is None else e.daily_limit - used.get(e.instance_id, 0)
            for e in plan
        ],
        [e.email_provider.value if e.email_provider else None for e in plan],
        [e.linkedin_provider.value if e.linkedin_provider else None for e in plan],
        [_mode(e, Channel.EMAIL) for e in plan],
        [_mode(e, Channel.LINKEDIN) for e in plan],
        batch,
        sender_id,
        lease_s,
        [e.local_day if e.daily_limit is not None else None for e in plan],
    )
    return [_claimed(row) for row in rows]


async def claim_retries(
    db: DriverConnection, instance_ids: list[uuid.UUID], batch: int, sender_id: str, lease_s: float
) -> list[Claimed]:
    if not instance_ids or batch <= 0:
        return []
    rows = await db.fetch(_CLAIM_RETRIES, instance_ids, batch, sender_id, lease_s)
    return [_claimed(row) for row in rows]


async def claim_abandoned(
    db: DriverConnection,
    instance_ids: list[uuid.UUID],
    batch: int,
    sender_id: str,
    lease_s: float,
    marked_before_leaving: Sequence[Provider] = (),
) -> list[Claimed]:
    if batch <= 0:
        return []
    rows = await db.fetch(
        _CLAIM_ABANDONED,
        instance_ids,
        batch,
        sender_id,
        lease_s,
        [p.value for p in marked_before_leaving],
    )
    return [_claimed(row) for row in rows]


async def mark_leaving(db: DriverConnection, sender_id: str, dispatch_ids: list[uuid.UUID]) -> None:
    """Say, before the request goes out, that these touches may reach their provider: if this
    sender dies now, whoever takes them over must not send them again blindly."""
    await db.execute(
        "UPDATE dispatches SET uncertain = true WHERE id = ANY($2::uuid[]) AND claimed_by = $1",
        sender_id,
        dispatch_ids,
    )


_STANDING = """
    SELECT d.id,
           CASE WHEN d.claimed_by IS DISTINCT FROM $2 THEN 'lost'
                WHEN e.erased_at IS NOT NULL THEN 'stop'
                WHEN i.status = 'active' AND e.status IN ('active', 'completed') THEN 'send'
                WHEN i.status IN ('active', 'paused')
                     AND e.status IN ('enrolled', 'active', 'paused', 'completed') THEN 'hold'
                ELSE 'stop' END AS verdict,
           CASE WHEN e.erased_at IS NOT NULL THEN 'the contact was erased'
                WHEN i.status = 'active' AND e.status IN ('active', 'completed') THEN ''
                ELSE format('the enrollment is %s and its instance %s', e.status, i.status)
           END AS why
    FROM dispatches d
    JOIN enrollments e ON e.id = d.enrollment_id
    JOIN campaign_instances i ON i.id = d.instance_id
    WHERE d.id = ANY($1::uuid[])
"""


async def standing(
    db: DriverConnection, sender_id: str, dispatch_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """Whether each claimed touch may still leave, read just before it does: ``send``;
    ``hold`` while its instance or enrollment is paused (it goes back to the queue); ``stop``
    once either has stopped for good (unsubscribed, replied, removed, completed instance...)
    or its contact was erased (even a completed enrollment's last touch stays then).
    A completed enrollment still takes the other channel's touch of its last step. ``lost``:
    the claim is no longer this sender's (it was slow past its lease and another took the
    touch over), so it must not send it."""
    rows = await db.fetch(_STANDING, dispatch_ids, sender_id)
    return {row["id"]: (row["verdict"], row["why"]) for row in rows}


_RENEW = """
    UPDATE dispatches SET claimed_until = now() + make_interval(secs => $2)
    WHERE id IN (SELECT id FROM dispatches WHERE status = 'sending' AND claimed_by = $1
                 FOR UPDATE SKIP LOCKED)
"""


async def renew_leases(db: DriverConnection, sender_id: str, lease_s: float) -> None:
    """Keep this sender's claims while it works on them. Rows its own recorders or
    ``mark_leaving`` hold locked are skipped, not waited for: a renewal that waited for them,
    holding the rest, deadlocked with a recording that locks the same rows in another order
    (three times in a row under load, which stopped the sender). A skipped row is being
    recorded (its claim ends) or is renewed on the next beat, a third of a lease later."""
    await db.execute(_RENEW, sender_id, lease_s)


_CANCEL_STOPPED = """
    UPDATE dispatches d SET status = 'cancelled', next_attempt_at = NULL
    FROM enrollments e, campaign_instances i
    WHERE d.status = 'queued' AND e.id = d.enrollment_id AND i.id = d.instance_id
      AND (e.status IN ('replied', 'unsubscribed', 'bounced', 'failed', 'removed')
           OR e.erased_at IS NOT NULL OR i.status IN ('completed', 'failed'))
"""
"""Queued touches whose enrollment stopped (a reply, an unsubscribe, a bounce reported by a
webhook) or whose instance ended: they will never leave, so they stop counting as retrying."""


async def cancel_stopped(db: DriverConnection) -> None:
    await db.execute(_CANCEL_STOPPED)
