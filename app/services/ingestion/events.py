"""Event ingestion: one statement stores a batch of normalized events exactly once, applies
their effects on enrollments and bumps counters for first outcomes only.

Both the webhook shim and the recordEvent mutation come through ``ingest``, which talks to
asyncpg directly (``app.db.driver``): on a busy shim, SQLAlchemy's per-statement work cost
more than the statements. The lock order is ``app.services.ingestion.effects``'s.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.driver import DriverConnection, in_session_transaction
from app.domain.enums import (
    EMAIL_ONLY_EVENTS,
    LINKEDIN_ONLY_EVENTS,
    Channel,
    ErrorCode,
    EventType,
    Provider,
)
from app.domain.errors import DomainError
from app.domain.limits import JSON_MAX_BYTES, PROVIDER_EVENT_ID_MAX, STEP_NUMBER_MAX
from app.domain.text import storable
from app.models.outcomes import SHARDS
from app.services.ingestion.effects import with_effects
from app.services.validation import Problems, instant_problem


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
    metadata_json: str | None = None
    """``metadata`` as ``check_event`` serialized it to measure it, stored as is by ``ingest``."""
    via_api: bool = False
    """Reported through the API (the generic webhook, recordEvent: whoever holds a key), not
    by the provider's own webhook or our sender. Its ``provider_event_id`` is deduplicated
    apart from the provider's own, so a key can never make a real delivery a duplicate."""


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
    when = None if event.occurred_at is None else instant_problem(event.occurred_at)
    if when is not None:
        add("occurred_at", when)
    if event.enrollment_ref is not None and (
        not storable(event.enrollment_ref) or len(event.enrollment_ref) > 255
    ):
        add("enrollment_id", "must be at most 255 characters, without NUL characters")
    inner = Problems()
    metadata_json = inner.serialized_json_object("metadata", event.metadata)
    p.errors.extend(DomainError(e.code, e.message, (*prefix, *e.field)) for e in inner.errors)
    return NewEvent(
        enrollment_ref=event.enrollment_ref,
        event_type=event.event_type,
        provider=event.provider,
        channel=channel,
        provider_event_id=peid,
        step_number=event.step_number,
        occurred_at=event.occurred_at,
        metadata=event.metadata if metadata_json is not None else {},
        metadata_json=metadata_json,
        via_api=event.via_api,
    )


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


_INSERT_EVENTS = f"""
    INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel, provider,
                                 provider_event_id, step_number, occurred_at, metadata, via_api)
    SELECT n.id, n.instance_id, u.event_type::event_type, u.channel::channel,
           u.provider::provider, u.provider_event_id, u.step_number,
           coalesce(u.occurred_at, now()),
           CASE WHEN n.erased_at IS NOT NULL THEN '{{}}'::jsonb
                WHEN n.id IS NOT NULL THEN u.metadata::jsonb ELSE (
               SELECT CASE WHEN octet_length(o.metadata::text) <= {JSON_MAX_BYTES}
                           THEN o.metadata
                           ELSE jsonb_build_object('unresolved_enrollment_ref', u.ref,
                                                   'metadata_dropped', true) END
               FROM (SELECT u.metadata::jsonb || jsonb_build_object(
                         'unresolved_enrollment_ref', u.ref)) AS o(metadata)
           ) END,
           u.via_api
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::int[], $8::timestamptz[], $9::text[], $10::bool[])
         WITH ORDINALITY AS u(enrollment_id, ref, event_type, channel, provider,
                              provider_event_id, step_number, occurred_at, metadata, via_api, ord)
    LEFT JOIN (SELECT id, instance_id, erased_at FROM enrollments
               WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE) n
      ON n.id = u.enrollment_id
    ORDER BY u.ord
    ON CONFLICT (provider, provider_event_id, via_api) WHERE provider_event_id IS NOT NULL
    DO NOTHING
    RETURNING id, enrollment_id, instance_id, event_type::text AS event_type,
              channel::text AS channel, provider::text AS provider, provider_event_id,
              step_number, occurred_at, metadata ->> 'Type' AS bounce_type, via_api
"""
"""The events, each with its enrollment when it exists; an orphan's metadata keeps the
reference that could not be resolved, and if that would push metadata already at the size
limit over it (measured as the constraint measures it), the provider's fields give way.

An erased enrollment's events keep no metadata (the provider's fields may carry the address
again). Its row is read under a KEY SHARE lock (the one the foreign key takes anyway, taken
earlier, in id order): an erasure holds the row FOR UPDATE, so an event racing it waits for its
commit and then reads ``erased_at`` as committed, never the version before the erasure."""

_STORE_EVENTS = with_effects(
    _INSERT_EVENTS,
    shard_parameter=11,
    returning="s.id, s.enrollment_id IS NULL AS orphan, s.provider, s.provider_event_id, s.via_api",
)


async def ingest(db: DriverConnection, events: Sequence[NewEvent]) -> IngestResult:
    """Store ``events`` (already validated with ``check_event``) and apply their effects, in
    one statement: atomic on its own, or part of the transaction ``db`` is in."""
    result = IngestResult()
    if not events:
        return result
    # Sorted by dedupe key so that concurrent batches take unique-index locks in one order.
    order = sorted(range(len(events)), key=lambda i: (*_dedupe_key(events[i]), i))
    rows: list[tuple[Any, ...]] = []
    for i in order:
        event = events[i]
        rows.append(
            (
                _parse_uuid(event.enrollment_ref),
                event.enrollment_ref or "",
                event.event_type.value,
                (event.channel or default_channel(event.event_type)).value,
                event.provider.value,
                event.provider_event_id,
                event.step_number,
                event.occurred_at,
                event.metadata_json or json.dumps(event.metadata, ensure_ascii=False),
                event.via_api,
            )
        )
    inserted = await db.fetch(_STORE_EVENTS, *zip(*rows, strict=True), random.randrange(SHARDS))
    result.accepted = len(inserted)
    result.duplicates = len(events) - len(inserted)
    result.orphans = {row["id"] for row in inserted if row["orphan"]}
    result.orphaned = len(result.orphans)
    by_key = {
        (row["provider"], row["provider_event_id"] or "", row["via_api"]): row["id"]
        for row in inserted
    }
    keyless = iter(row["id"] for row in inserted if row["provider_event_id"] is None)
    ids: list[uuid.UUID | None] = [None] * len(events)
    for i in order:
        if events[i].provider_event_id is None:
            ids[i] = next(keyless)
        else:
            ids[i] = by_key.pop(_dedupe_key(events[i]), None)
    result.event_ids = ids
    return result


def _dedupe_key(event: NewEvent) -> tuple[str, str, bool]:
    """What the unique index on events compares (the namespace last, as in the index)."""
    return (event.provider.value, event.provider_event_id or "", event.via_api)


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
    db = await in_session_transaction(session)
    result = await ingest(db, [checked])
    stored = result.event_ids[0]
    if stored is not None:
        return Recorded(stored, duplicate=False)
    existing = await db.fetch(
        "SELECT id FROM campaign_events"
        " WHERE provider = $1::provider AND provider_event_id = $2 AND via_api = $3",
        checked.provider.value,
        checked.provider_event_id,
        checked.via_api,
    )
    return Recorded(existing[0]["id"], duplicate=True)
