"""Reply sentiment: classifications from people (classifyReply) and providers (lemlist), and
what an out-of-office or unsubscribe-request reply does to its enrollment.

Every classification is a ``reply_classifications`` row; the database function
``refresh_reply_sentiments`` derives the replies' and enrollments' ``sentiment`` from those
rows (the latest classification wins), so the result is the same whatever order replies and
classifications arrive in. Both paths lock the enrollment row (FOR NO KEY UPDATE, as ingestion
does) before they write, so a reply and a classification of one enrollment stored at the same
moment cannot miss each other: the second to take the lock reads what the first committed.
Two classifications of one reply are serialized the same way, and the later one wins (its
``classified_at`` is read after the lock).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.driver import in_session_transaction
from app.domain.enums import (
    Channel,
    EnrollmentStatus,
    ErrorCode,
    EventType,
    InstanceStatus,
    Provider,
    ReplySentiment,
)
from app.domain.errors import DomainError
from app.services.ingestion.events import NewEvent, check_event, ingest
from app.services.validation import Problems

ACTOR_MAX = 255
REOPENABLE = (EnrollmentStatus.REPLIED, EnrollmentStatus.ACTIVE)
"""What an out-of-office reply puts back to (or keeps) ``active``: the reply's own stop, or
an earlier out-of-office. Anything of higher precedence (bounced, unsubscribed), a final
status (failed, removed), a pause, or a completed sequence stays as it is."""
RUNNING_INSTANCE = (InstanceStatus.ACTIVE, InstanceStatus.PAUSED)


@dataclass(frozen=True, slots=True)
class Classified:
    event_id: uuid.UUID
    enrollment_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ProviderClassification:
    """A provider's judgement of a lead in a campaign (lemlist's interested / not interested):
    it names the enrollment, not one reply."""

    enrollment_ref: str | None
    sentiment: ReplySentiment
    provider: Provider
    provider_event_id: str
    classified_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderClassifications:
    accepted: int
    duplicates: int
    unresolved: int


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


def _check_return_date(
    p: Problems, sentiment: ReplySentiment, return_date: datetime | None, now: datetime, days: int
) -> None:
    if return_date is None:
        return
    if sentiment is not ReplySentiment.OUT_OF_OFFICE:
        p.add("return_date", "may only be given with the sentiment OUT_OF_OFFICE")
    elif return_date.tzinfo is None:
        p.add("return_date", "must carry a time zone")
    elif return_date <= now:
        p.add("return_date", "must be in the future")
    elif return_date > now + timedelta(days=days):
        p.add("return_date", f"must be at most {days} days ahead")


_REPLY = text("""
    SELECT e.event_type::text AS event_type, e.enrollment_id, e.step_number, now() AS now
    FROM campaign_events e WHERE e.id = :id
""")
_LOCK = text("SELECT id FROM enrollments WHERE id = :id FOR NO KEY UPDATE")
_CLASSIFY = text("""
    INSERT INTO reply_classifications
        (enrollment_id, event_id, sentiment, return_date, provider, classified_by, classified_at)
    VALUES (:enrollment_id, :event_id, :sentiment, :return_date, 'api', :actor, clock_timestamp())
""")
_REFRESH = text("SELECT refresh_reply_sentiments(CAST(:ids AS uuid[]))")
_STATE = text("""
    SELECT n.status::text AS status, n.sentiment, i.status::text AS instance_status,
           (SELECT r.id FROM campaign_events r
             WHERE r.enrollment_id = n.id AND r.event_type = 'replied'
             ORDER BY r.occurred_at DESC, r.id DESC LIMIT 1) AS latest_reply
    FROM enrollments n JOIN campaign_instances i ON i.id = n.instance_id
    WHERE n.id = :id
""")
_REOPEN = text("""
    WITH requeued AS (
        UPDATE dispatches SET status = 'queued', next_attempt_at = :due
        WHERE enrollment_id = :id AND status = 'cancelled'
    )
    UPDATE enrollments SET status = 'active', next_action_at = :due WHERE id = :id
""")
"""The enrollment runs again from the return date. A touch the reply had cancelled before it
left is queued again for that date: its dispatch row (one per touch) would otherwise keep the
sender from making it."""


async def classify_reply(
    session: AsyncSession,
    event_id: str,
    sentiment: ReplySentiment,
    return_date: datetime | None,
    actor: str,
    *,
    out_of_office_days: int,
    return_max_days: int,
) -> Classified:
    """Record ``actor``'s classification of a reply and apply what it means.

    ``out_of_office``: the reply does not stop the sequence. If it is the enrollment's latest
    reply, the enrollment is ``replied`` (or already ``active``) and its instance runs, the
    enrollment is ``active`` again with its next touch at ``return_date`` (default: now plus
    ``out_of_office_days``); a later reply, bounce or unsubscribe stops it as usual.
    ``unsubscribe_request``: an ``unsubscribed`` event is recorded for the enrollment through
    the ingestion path (status, counter, suppression of the address everywhere).
    """
    p = Problems()
    reply_id = _uuid(event_id)
    row = None if reply_id is None else (await session.execute(_REPLY, {"id": reply_id})).first()
    if reply_id is None or row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no event has this id", ("event_id",))
    if row.event_type != EventType.REPLIED.value:
        p.add("event_id", f"names a {row.event_type} event; only a reply can be classified")
    elif row.enrollment_id is None:
        p.add("event_id", "names an orphan reply; link it to its enrollment first")
    _check_return_date(p, sentiment, return_date, row.now, return_max_days)
    p.raise_if_any()
    enrollment_id: uuid.UUID = row.enrollment_id
    effective_return = None
    if sentiment is ReplySentiment.OUT_OF_OFFICE:
        effective_return = return_date or row.now + timedelta(days=out_of_office_days)

    await session.execute(_LOCK, {"id": enrollment_id})
    await session.execute(
        _CLASSIFY,
        {
            "enrollment_id": enrollment_id,
            "event_id": reply_id,
            "sentiment": sentiment.value,
            "return_date": effective_return,
            "actor": actor[:ACTOR_MAX],
        },
    )
    await session.execute(_REFRESH, {"ids": [enrollment_id]})
    state = (await session.execute(_STATE, {"id": enrollment_id})).one()
    if (
        sentiment is ReplySentiment.OUT_OF_OFFICE
        and state.sentiment == ReplySentiment.OUT_OF_OFFICE.value
        and state.latest_reply == reply_id
        and state.status in REOPENABLE
        and state.instance_status in RUNNING_INSTANCE
    ):
        await session.execute(_REOPEN, {"id": enrollment_id, "due": effective_return})
    if sentiment is ReplySentiment.UNSUBSCRIBE_REQUEST:
        await _unsubscribe(session, reply_id, enrollment_id, row.step_number, actor)
    return Classified(reply_id, enrollment_id)


async def _unsubscribe(
    session: AsyncSession,
    reply_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    step_number: int | None,
    actor: str,
) -> None:
    """The unsubscribe the reply asked for, as an event: one per reply (its provider event id
    is derived from the reply's), so classifying it again records nothing more."""
    p = Problems()
    event = check_event(
        p,
        NewEvent(
            enrollment_ref=str(enrollment_id),
            event_type=EventType.UNSUBSCRIBED,
            provider=Provider.API,
            channel=Channel.EMAIL,
            provider_event_id=f"unsubscribe-request:{reply_id}",
            step_number=step_number,
            metadata={"reply_event_id": str(reply_id), "classified_by": actor[:ACTOR_MAX]},
        ),
    )
    p.raise_if_any()
    await ingest(await in_session_transaction(session), [event])


_PROVIDER_CLASSIFY = text("""
    WITH wanted AS (
        SELECT u.enrollment_id, u.sentiment, u.provider, u.provider_event_id, u.classified_at
        FROM unnest(CAST(:enrollments AS uuid[]), CAST(:sentiments AS text[]),
                    CAST(:providers AS text[]), CAST(:keys AS text[]),
                    CAST(:times AS timestamptz[]))
             AS u(enrollment_id, sentiment, provider, provider_event_id, classified_at)
        JOIN enrollments n ON n.id = u.enrollment_id
    ), locked AS (
        SELECT n.id FROM enrollments n WHERE n.id IN (SELECT enrollment_id FROM wanted)
        ORDER BY n.id FOR NO KEY UPDATE
    )
    INSERT INTO reply_classifications
        (enrollment_id, sentiment, provider, provider_event_id, classified_by, classified_at)
    SELECT w.enrollment_id, w.sentiment, w.provider::provider, w.provider_event_id,
           w.provider, w.classified_at
    FROM wanted w
    WHERE (SELECT count(*) FROM locked) >= 0
    ORDER BY w.provider, w.provider_event_id
    ON CONFLICT (provider, provider_event_id) WHERE provider_event_id IS NOT NULL DO NOTHING
    RETURNING enrollment_id
""")


async def record_provider_classifications(
    session: AsyncSession, classifications: Sequence[ProviderClassification]
) -> ProviderClassifications:
    """Store providers' classifications (a repeat delivery is stored once) and refresh the
    sentiments of their enrollments' replies, in the caller's transaction. One naming no
    enrollment we know is not stored: there is no reply of ours it could qualify."""
    resolved = [(c, _uuid(c.enrollment_ref)) for c in classifications]
    known = [(c, ref) for c, ref in resolved if ref is not None]
    if not known:
        return ProviderClassifications(0, 0, len(classifications))
    rows = (
        await session.execute(
            _PROVIDER_CLASSIFY,
            {
                "enrollments": [ref for _, ref in known],
                "sentiments": [c.sentiment.value for c, _ in known],
                "providers": [c.provider.value for c, _ in known],
                "keys": [c.provider_event_id for c, _ in known],
                "times": [c.classified_at for c, _ in known],
            },
        )
    ).all()
    touched = sorted({row.enrollment_id for row in rows})
    if touched:
        await session.execute(_REFRESH, {"ids": touched})
    existing = set(
        await session.scalars(
            text("SELECT id FROM enrollments WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": [ref for _, ref in known]},
        )
    )
    found = sum(1 for _, ref in known if ref in existing)
    return ProviderClassifications(
        accepted=len(rows), duplicates=found - len(rows), unresolved=len(classifications) - found
    )


@dataclass(frozen=True, slots=True)
class SentimentDifference:
    """A stored sentiment that is not what the classifications say (``kind``: ``event`` or
    ``enrollment``)."""

    kind: str
    id: uuid.UUID
    stored: str | None
    derived: str | None


_WITH_REPLIES = "SELECT DISTINCT enrollment_id FROM campaign_events"
_WITH_REPLIES += " WHERE event_type = 'replied' AND enrollment_id IS NOT NULL"
_STORED_SENTIMENTS = text(f"""
    SELECT 'event' AS kind, e.id,
           concat_ws(' ', e.sentiment, e.sentiment_by, e.sentiment_at, e.return_date) AS value
    FROM campaign_events e WHERE e.event_type = 'replied' AND e.enrollment_id IS NOT NULL
    UNION ALL
    SELECT 'enrollment', n.id, concat_ws(' ', n.sentiment, n.status)
    FROM enrollments n WHERE n.id IN ({_WITH_REPLIES})
""")
_REFRESH_ALL = text(f"SELECT refresh_reply_sentiments(ARRAY({_WITH_REPLIES}))")


async def _stored_sentiments(session: AsyncSession) -> dict[tuple[str, uuid.UUID], str]:
    rows = await session.execute(_STORED_SENTIMENTS)
    return {(row.kind, row.id): row.value or None for row in rows}


async def check_sentiments(session: AsyncSession, fix: bool = False) -> list[SentimentDifference]:
    """The replies and enrollments whose stored sentiment (with who, when, the return date,
    and the enrollment's status) differs from what ``refresh_reply_sentiments`` derives from
    the classifications. The derivation runs in a savepoint rolled back afterwards, unless
    ``fix``: then it stays, in the caller's transaction."""
    stored = await _stored_sentiments(session)
    savepoint = await session.begin_nested()
    await session.execute(_REFRESH_ALL)
    derived = await _stored_sentiments(session)
    if fix:
        await savepoint.commit()
    else:
        await savepoint.rollback()
    differences = [
        SentimentDifference(kind, id_, stored.get((kind, id_)), value)
        for (kind, id_), value in derived.items()
        if stored.get((kind, id_)) != value
    ]
    return sorted(differences, key=lambda d: (d.kind, str(d.id)))
