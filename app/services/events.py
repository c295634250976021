"""Event ingestion: one transaction stores a batch of normalized events exactly once, applies
their effects on enrollments and bumps counters for first outcomes only.

Both the webhook shim and the recordEvent mutation come through ``ingest``.
Lock order, the same in every transaction so that batches cannot deadlock: event keys, outcome
keys and counter shards in sorted order, then enrollment rows in id order. Enrollment rows are
locked FOR NO KEY UPDATE, which does not conflict with the KEY SHARE locks that inserting
events and outcomes (foreign keys to enrollments) take.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    EMAIL_ONLY_EVENTS,
    LINKEDIN_ONLY_EVENTS,
    TERMINAL_PRECEDENCE,
    Channel,
    EnrollmentStatus,
    ErrorCode,
    EventType,
    Provider,
)
from app.domain.errors import DomainError
from app.domain.limits import JSON_MAX_BYTES, PROVIDER_EVENT_ID_MAX, STEP_NUMBER_MAX
from app.models.outcomes import COUNTERS, SHARDS
from app.services.validation import Problems, storable

SENT_TYPES = frozenset(
    {
        EventType.SENT,
        EventType.MESSAGE_SENT,
        EventType.VOICE_MESSAGE_SENT,
        EventType.CONNECTION_REQUESTED,
        EventType.PROFILE_VISITED,
    }
)
COUNTER_OF: dict[EventType, str] = {
    **dict.fromkeys(SENT_TYPES, "sent"),
    EventType.DELIVERED: "delivered",
    EventType.OPENED: "opened",
    EventType.CLICKED: "clicked",
    EventType.REPLIED: "replied",
    EventType.BOUNCED: "bounced",
    EventType.UNSUBSCRIBED: "unsubscribed",
    EventType.SPAM_COMPLAINT: "unsubscribed",
}
STATUS_OF: dict[EventType, EnrollmentStatus] = {
    EventType.REPLIED: EnrollmentStatus.REPLIED,
    EventType.BOUNCED: EnrollmentStatus.BOUNCED,
    EventType.UNSUBSCRIBED: EnrollmentStatus.UNSUBSCRIBED,
    EventType.SPAM_COMPLAINT: EnrollmentStatus.UNSUBSCRIBED,
}
COMPLETED = EnrollmentStatus.COMPLETED
_RUNNING = frozenset({EnrollmentStatus.ENROLLED, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED})


def default_channel(event_type: EventType) -> Channel:
    return Channel.LINKEDIN if event_type in LINKEDIN_ONLY_EVENTS else Channel.EMAIL


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A provider's report, normalized. ``enrollment_ref`` is whatever the provider sent back."""

    enrollment_ref: str | None
    event_type: EventType
    provider: Provider
    channel: Channel | None = None
    provider_event_id: str | None = None
    step_number: int | None = None
    occurred_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    orphaned: int = 0
    event_ids: list[uuid.UUID | None] = field(default_factory=list)
    """Per input event: the stored event's id, or None for a duplicate."""
    orphans: set[uuid.UUID] = field(default_factory=set)
    """The ids of the stored events whose enrollment could not be resolved."""


def check_event(p: Problems, event: NewEvent, prefix: tuple[str, ...] = ()) -> NewEvent:
    """Validate one event, recording problems under ``prefix``; return it with defaults set."""

    def add(name: str, problem: str) -> None:
        label = name.replace("_", " ")
        p.errors.append(DomainError(ErrorCode.INVALID, f"{label} {problem}", (*prefix, name)))

    channel = event.channel or default_channel(event.event_type)
    if event.event_type in EMAIL_ONLY_EVENTS and channel is not Channel.EMAIL:
        add("channel", f"must be email for a {event.event_type.value} event")
    if event.event_type in LINKEDIN_ONLY_EVENTS and channel is not Channel.LINKEDIN:
        add("channel", f"must be linkedin for a {event.event_type.value} event")
    if event.step_number is not None and not 1 <= event.step_number <= STEP_NUMBER_MAX:
        add("step_number", f"must be between 1 and {STEP_NUMBER_MAX} (got {event.step_number})")
    peid = event.provider_event_id
    if peid is not None and (not 1 <= len(peid) <= PROVIDER_EVENT_ID_MAX or not storable(peid)):
        add("provider_event_id", f"must have 1 to {PROVIDER_EVENT_ID_MAX} characters")
    if event.occurred_at is not None and event.occurred_at.tzinfo is None:
        add("occurred_at", "must carry a time zone")
    if event.enrollment_ref is not None and (
        not storable(event.enrollment_ref) or len(event.enrollment_ref) > 255
    ):
        add("enrollment_id", "must be at most 255 characters, without NUL characters")
    inner = Problems()
    metadata = inner.json_object("metadata", event.metadata)
    p.errors.extend(DomainError(e.code, e.message, (*prefix, *e.field)) for e in inner.errors)
    return replace(event, channel=channel, metadata=metadata or {})


def _with_ref(event: NewEvent) -> dict[str, Any]:
    """An orphan's metadata keeps the reference that could not be resolved; if that would push
    metadata already at the size limit over it, the provider's fields give way."""
    ref = {"unresolved_enrollment_ref": event.enrollment_ref or ""}
    metadata = {**event.metadata, **ref}
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > JSON_MAX_BYTES:
        return {**ref, "metadata_dropped": True}
    return metadata


def _parse_uuid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        return None


_INSERT_EVENTS = text(
    """
    INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel, provider,
                                 provider_event_id, step_number, occurred_at, metadata)
    SELECT u.enrollment_id, u.instance_id, u.event_type::event_type, u.channel::channel,
           u.provider::provider, u.provider_event_id, u.step_number,
           coalesce(u.occurred_at, now()), u.metadata::jsonb
    FROM unnest(CAST(:enrollment_ids AS uuid[]), CAST(:instance_ids AS uuid[]),
                CAST(:event_types AS text[]), CAST(:channels AS text[]),
                CAST(:providers AS text[]), CAST(:provider_event_ids AS text[]),
                CAST(:step_numbers AS int[]), CAST(:occurred_ats AS timestamptz[]),
                CAST(:metadata AS text[]))
         WITH ORDINALITY AS u(enrollment_id, instance_id, event_type, channel, provider,
                              provider_event_id, step_number, occurred_at, metadata, ord)
    ORDER BY u.ord
    ON CONFLICT (provider, provider_event_id) WHERE provider_event_id IS NOT NULL DO NOTHING
    RETURNING id, enrollment_id, instance_id, event_type::text AS event_type,
              channel::text AS channel, provider::text AS provider, provider_event_id,
              step_number, occurred_at
    """
)

_INSERT_OUTCOMES = text(
    """
    INSERT INTO event_outcomes (enrollment_id, instance_id, channel, step_number, counter)
    SELECT u.enrollment_id, u.instance_id, u.channel::channel, u.step_number, u.counter
    FROM unnest(CAST(:enrollment_ids AS uuid[]), CAST(:instance_ids AS uuid[]),
                CAST(:channels AS text[]), CAST(:step_numbers AS int[]),
                CAST(:counters AS text[]))
         WITH ORDINALITY AS u(enrollment_id, instance_id, channel, step_number, counter, ord)
    ORDER BY u.ord
    ON CONFLICT DO NOTHING
    RETURNING instance_id, counter
    """
)

_BUMP_SHARDS = text(
    f"""
    INSERT INTO instance_counter_shards (instance_id, shard, {", ".join(COUNTERS)})
    SELECT u.instance_id, :shard, {", ".join(f"u.{c}" for c in COUNTERS)}
    FROM unnest(CAST(:instance_ids AS uuid[]),
                {", ".join(f"CAST(:{c} AS int[])" for c in COUNTERS)})
         WITH ORDINALITY AS u(instance_id, {", ".join(COUNTERS)}, ord)
    ORDER BY u.ord
    ON CONFLICT (instance_id, shard) DO UPDATE SET
        {", ".join(f"{c} = instance_counter_shards.{c} + excluded.{c}" for c in COUNTERS)}
    """
)

_LOCK_ENROLLMENTS = text(
    """
    SELECT e.id, e.status::text AS status, e.current_step, e.next_action_at,
           e.instance_id, t.id AS template_id, t.type::text AS template_type
    FROM enrollments e
    JOIN campaign_instances i ON i.id = e.instance_id
    JOIN campaign_templates t ON t.id = i.template_id
    WHERE e.id = ANY(CAST(:ids AS uuid[]))
    ORDER BY e.id
    FOR NO KEY UPDATE OF e
    """
)

_SEQUENCES = text(
    """
    SELECT s.template_id, s.step_number, min(s.delay_hours) AS delay_hours FROM (
        SELECT es.template_id, es.step_number, es.delay_hours
        FROM email_steps es JOIN campaign_templates t ON t.id = es.template_id
        WHERE es.template_id = ANY(CAST(:ids AS uuid[])) AND es.is_active
          AND t.type IN ('email', 'multi_channel')
        UNION ALL
        SELECT ls.template_id, ls.step_number, ls.delay_hours
        FROM linkedin_steps ls JOIN campaign_templates t ON t.id = ls.template_id
        WHERE ls.template_id = ANY(CAST(:ids AS uuid[])) AND ls.is_active
          AND t.type IN ('linkedin', 'multi_channel')
    ) s
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)

_UPDATE_ENROLLMENTS = text(
    """
    UPDATE enrollments e SET
        status = u.status::enrollment_status,
        current_step = u.current_step,
        next_action_at = u.next_action_at,
        completed_at = greatest(e.completed_at, u.completed_at),
        unsubscribed_at = least(e.unsubscribed_at, u.unsubscribed_at)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:steps AS int[]),
                CAST(:next_action_ats AS timestamptz[]), CAST(:completed_ats AS timestamptz[]),
                CAST(:unsubscribed_ats AS timestamptz[]))
         AS u(id, status, current_step, next_action_at, completed_at, unsubscribed_at)
    WHERE e.id = u.id
    """
)


async def ingest(session: AsyncSession, events: Sequence[NewEvent]) -> IngestResult:
    """Store ``events`` (already validated with ``check_event``) and apply their effects."""
    result = IngestResult()
    if not events:
        return result
    refs = [_parse_uuid(e.enrollment_ref) for e in events]
    known = {
        str(row.id): str(row.instance_id)
        for row in await session.execute(
            text("SELECT id, instance_id FROM enrollments WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": sorted({r for r in refs if r})},
        )
    }
    # Sorted by dedupe key so that concurrent batches take unique-index locks in one order.
    order = sorted(
        range(len(events)),
        key=lambda i: (events[i].provider.value, events[i].provider_event_id or "", i),
    )
    rows: dict[str, list[Any]] = defaultdict(list)
    for i in order:
        event = events[i]
        enrollment_id = refs[i] if refs[i] in known else None
        metadata = _with_ref(event) if enrollment_id is None else event.metadata
        rows["enrollment_ids"].append(enrollment_id)
        rows["instance_ids"].append(known.get(enrollment_id) if enrollment_id else None)
        rows["event_types"].append(event.event_type.value)
        rows["channels"].append((event.channel or default_channel(event.event_type)).value)
        rows["providers"].append(event.provider.value)
        rows["provider_event_ids"].append(event.provider_event_id)
        rows["step_numbers"].append(event.step_number)
        rows["occurred_ats"].append(event.occurred_at)
        rows["metadata"].append(json.dumps(metadata))
    inserted = (await session.execute(_INSERT_EVENTS, rows)).all()
    result.accepted = len(inserted)
    result.duplicates = len(events) - len(inserted)
    result.orphans = {row.id for row in inserted if row.enrollment_id is None}
    result.orphaned = len(result.orphans)
    by_key = {(row.provider, row.provider_event_id): row.id for row in inserted}
    keyless = iter(row.id for row in inserted if row.provider_event_id is None)
    ids: list[uuid.UUID | None] = [None] * len(events)
    for i in order:
        key = events[i].provider_event_id
        ids[i] = next(keyless) if key is None else by_key.pop((events[i].provider.value, key), None)
    result.event_ids = ids
    linked = [row for row in inserted if row.enrollment_id is not None]
    await count_outcomes(session, linked)
    await apply_effects(session, linked)
    return result


async def count_outcomes(session: AsyncSession, linked: Sequence[Any]) -> None:
    """Record first outcomes; only new ones move the counters, in one shard per transaction."""
    outcomes = sorted(
        {
            (
                str(row.enrollment_id),
                row.channel,
                row.step_number or 0,
                COUNTER_OF[et],
                str(row.instance_id),
            )
            for row in linked
            if (et := EventType(row.event_type)) in COUNTER_OF
        }
    )
    if not outcomes:
        return
    new = (
        await session.execute(
            _INSERT_OUTCOMES,
            {
                "enrollment_ids": [o[0] for o in outcomes],
                "channels": [o[1] for o in outcomes],
                "step_numbers": [o[2] for o in outcomes],
                "counters": [o[3] for o in outcomes],
                "instance_ids": [o[4] for o in outcomes],
            },
        )
    ).all()
    if not new:
        return
    increments: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for row in new:
        increments[str(row.instance_id)][row.counter] += 1
    instance_ids = sorted(increments)
    await session.execute(
        _BUMP_SHARDS,
        {"shard": random.randrange(SHARDS), "instance_ids": instance_ids}
        | {c: [increments[i][c] for i in instance_ids] for c in COUNTERS},
    )


def _rank(status: EnrollmentStatus) -> int:
    return TERMINAL_PRECEDENCE.get(status, -1)


async def apply_effects(session: AsyncSession, linked: Sequence[Any]) -> None:
    """Lock only the enrollments whose events change them, in id order, and update them."""
    effects: dict[str, list[Any]] = defaultdict(list)
    for row in linked:
        event_type = EventType(row.event_type)
        if event_type in SENT_TYPES or event_type in STATUS_OF:
            effects[str(row.enrollment_id)].append(row)
    if not effects:
        return
    locked = (await session.execute(_LOCK_ENROLLMENTS, {"ids": sorted(effects)})).all()
    sequences: dict[str, list[tuple[int, int]]] = defaultdict(list)
    if any(EventType(r.event_type) in SENT_TYPES for rows in effects.values() for r in rows):
        template_ids = sorted({str(row.template_id) for row in locked})
        for step in await session.execute(_SEQUENCES, {"ids": template_ids}):
            sequences[str(step.template_id)].append((step.step_number, step.delay_hours))
    updates: dict[str, list[Any]] = defaultdict(list)
    for enrollment in locked:
        changed = _next_state(enrollment, effects[str(enrollment.id)], sequences)
        if changed is None:
            continue
        updates["ids"].append(str(enrollment.id))
        for key, value in changed.items():
            updates[key].append(value)
    if updates:
        await session.execute(_UPDATE_ENROLLMENTS, updates)


def _next_state(
    enrollment: Any, events: list[Any], sequences: dict[str, list[tuple[int, int]]]
) -> dict[str, Any] | None:
    """The enrollment after these events, or None when they change nothing.

    The result does not depend on arrival order: the step only moves forward, a lower terminal
    status never overwrites a higher one, the next step is due after the LATEST touch of the
    current step (two touches of one step may arrive either way round), completion is dated by
    the latest touch of the last step and an unsubscribe by the earliest report.
    """
    status = EnrollmentStatus(enrollment.status)
    step = enrollment.current_step
    next_action_at = enrollment.next_action_at
    completed_at = unsubscribed_at = None
    sent = [e for e in events if EventType(e.event_type) in SENT_TYPES and e.step_number]
    if sent:
        latest = max(sent, key=lambda e: (e.step_number, e.occurred_at))
        advanced = latest.step_number > step
        step = max(step, latest.step_number)
        if latest.step_number == step and (status in _RUNNING or status is COMPLETED):
            following = [s for s in sequences[str(enrollment.template_id)] if s[0] > step]
            if not following:
                completed_at = latest.occurred_at
                if status in _RUNNING:
                    status, next_action_at = COMPLETED, None
            elif status in _RUNNING:
                due = latest.occurred_at + timedelta(hours=following[0][1])
                keep = not advanced and next_action_at is not None and next_action_at > due
                next_action_at = next_action_at if keep else due
    for event in events:
        target = STATUS_OF.get(EventType(event.event_type))
        if target is not None and _rank(target) > _rank(status):
            status, next_action_at = target, None
        if target is EnrollmentStatus.UNSUBSCRIBED:
            unsubscribed_at = min(filter(None, (unsubscribed_at, event.occurred_at)))
    if status is not EnrollmentStatus.UNSUBSCRIBED:
        unsubscribed_at = None
    if status is not COMPLETED:
        completed_at = None
    unchanged = (
        status.value == enrollment.status
        and step == enrollment.current_step
        and next_action_at == enrollment.next_action_at
        and unsubscribed_at is None
        and completed_at is None
    )
    if unchanged:
        return None
    return {
        "statuses": status.value,
        "steps": step,
        "next_action_ats": next_action_at,
        "completed_ats": completed_at,
        "unsubscribed_ats": unsubscribed_at,
    }


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: uuid.UUID
    duplicate: bool


async def record_event(session: AsyncSession, event: NewEvent) -> Recorded:
    """One event through the same path as the webhooks (recordEvent). The enrollment id must
    be well formed; an unknown one is stored as an orphan, as a provider's would be."""
    p = Problems()
    if _parse_uuid(event.enrollment_ref) is None:
        p.add("enrollment_id", f"is not a valid id: {str(event.enrollment_ref)[:64]!r}")
    checked = check_event(p, event)
    p.raise_if_any()
    result = await ingest(session, [checked])
    stored = result.event_ids[0]
    if stored is not None:
        return Recorded(stored, duplicate=False)
    existing = await session.scalar(
        text(
            "SELECT id FROM campaign_events"
            " WHERE provider = CAST(:provider AS provider) AND provider_event_id = :key"
        ),
        {"provider": checked.provider.value, "key": checked.provider_event_id},
    )
    return Recorded(existing, duplicate=True)
