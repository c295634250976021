"""Erasing a contact (domain.md, Suppression): its personal data leaves every table, its counts
stay, and a hashed suppression keeps it from being enrolled again.

What is personal, and what becomes of it, in the one transaction of an erasure:

- its enrollments: metadata (names, addresses, every personalization variable) cleared, the
  contact id (a CRM id may well be an e-mail address) replaced by ``erased:`` and its SHA-256,
  ``erased_at`` set; running ones become ``removed`` (terminal ones keep their status, which
  the analytics count);
- their rows in ``enrollment_addresses``: deleted;
- their events' metadata (the providers' fields: lemlist's ``leadEmail``, error messages):
  cleared, as is the metadata of orphans that name one of the addresses or enrollments;
- their dispatches' last errors (a provider may quote the recipient): replaced by a marker;
  queued touches are cancelled;
- the addresses' suppressions in clear: replaced by hashed ones, and the suppression log's
  addresses by their hash.

Event types, steps, times, outcomes and counters stay: the analytics do not move. The audit
row keeps the SHA-256 of the contact id, who erased it, when, and how much was cleared.

After the erasure, the database sees to it that nothing personal comes back: an event that
arrives later for an erased enrollment is stored without its metadata (ingestion locks the
enrollment and reads ``erased_at``), a sender does not send a touch claimed before it, and a
suppression in clear of a hashed address is dropped (a trigger).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import addresses
from app.domain.enums import Channel, ErrorCode
from app.domain.errors import DomainError
from app.domain.limits import CONTACT_ID_MAX
from app.models.enrollments import ERASED_CONTACT_PREFIX
from app.services.sending.record import ERASED_ERROR
from app.services.suppression import stop_running
from app.services.validation import Problems


@dataclass(frozen=True, slots=True)
class Erasure:
    """An erasure's audit: who, when, and how much it cleared; ``already_erased`` when this
    request found nothing left to erase (the figures are then the earlier erasure's)."""

    contact_sha256: str
    actor: str
    erased_at: datetime
    enrollments: int
    events: int
    dispatches: int
    addresses: int
    already_erased: bool


ENROLLMENT_GATE = 0x65726173757265
"""An advisory lock key: every enrollment transaction holds it shared, an erasure exclusively
(taken before anything else). So an enrollment of the contact racing its erasure either
commits before the erasure looks (and is erased with the others) or checks the suppressions
once the erasure has committed (and is refused): never enrolled in between, unerased."""


async def hold_off_erasures(session: AsyncSession) -> None:
    """Taken by every enrollment transaction before it checks suppressions."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": ENROLLMENT_GATE}
    )


def contact_hash(contact_id: str) -> str:
    return hashlib.sha256(contact_id.encode()).hexdigest()


def erased_contact_id(contact_id: str) -> str:
    """What an erased enrollment keeps as its contact id."""
    return ERASED_CONTACT_PREFIX + contact_hash(contact_id)


def check_contact_id(raw: Any) -> str:
    p = Problems()
    contact_id = p.text(
        "contact_id",
        raw if isinstance(raw, str) else None,
        required=True,
        min_length=1,
        max_length=CONTACT_ID_MAX,
    )
    p.raise_if_any()
    assert contact_id is not None
    return contact_id


_LOCK = text(
    "SELECT id, metadata, erased_at FROM enrollments WHERE contact_id = ANY(:contact_ids)"
    " ORDER BY id FOR UPDATE"
)
"""Every enrollment of the contact, erased or not, locked in id order: against a second
erasure, and against ingestion (which reads ``erased_at`` under a KEY SHARE lock)."""

_ADDRESSES = text(
    "SELECT channel::text, address FROM enrollment_addresses WHERE enrollment_id = ANY(:ids)"
)

_ERASE_ENROLLMENTS = text(
    """
    UPDATE enrollments
    SET metadata = '{}'::jsonb, contact_id = :erased_id, erased_at = now(),
        status = CASE WHEN status IN ('enrolled', 'active', 'paused')
                      THEN 'removed'::enrollment_status ELSE status END,
        next_action_at = NULL
    WHERE id = ANY(:ids)
    RETURNING erased_at
    """
)

_CLEAR_EVENTS = text(
    """
    UPDATE campaign_events SET metadata = '{}'::jsonb
    WHERE enrollment_id = ANY(:ids) AND metadata <> '{}'::jsonb
    """
)

_CLEAR_ORPHANS = text(
    """
    UPDATE campaign_events e
    SET metadata = CASE WHEN lower(btrim(e.metadata ->> 'unresolved_enrollment_ref'))
                             = ANY(:refs)
                        THEN jsonb_build_object('unresolved_enrollment_ref',
                                                e.metadata ->> 'unresolved_enrollment_ref')
                        ELSE '{}'::jsonb END
    WHERE e.enrollment_id IS NULL
      AND (lower(btrim(e.metadata ->> 'unresolved_enrollment_ref')) = ANY(:refs)
           OR lower(e.metadata::text) LIKE ANY(CAST(:patterns AS text[])))
      AND e.metadata <> CASE WHEN lower(btrim(e.metadata ->> 'unresolved_enrollment_ref'))
                                  = ANY(:refs)
                             THEN jsonb_build_object('unresolved_enrollment_ref',
                                                     e.metadata ->> 'unresolved_enrollment_ref')
                             ELSE '{}'::jsonb END
    """
)
"""Orphans that name an erased enrollment keep only that reference (so that they can still
be attached); orphans whose metadata quotes one of the addresses keep nothing."""

_CLEAR_DISPATCHES = text(
    """
    UPDATE dispatches
    SET last_error = CASE WHEN last_error IS NULL THEN NULL ELSE :marker END,
        status = CASE WHEN status = 'queued' THEN 'cancelled'::dispatch_status ELSE status END,
        next_attempt_at = CASE WHEN status = 'queued' THEN NULL ELSE next_attempt_at END
    WHERE enrollment_id = ANY(:ids)
      AND (status = 'queued' OR (last_error IS NOT NULL AND last_error <> :marker))
    """
)

_HASH_SUPPRESSIONS = text(
    """
    WITH wanted AS (
        SELECT channel, address, address_sha256
        FROM unnest(CAST(:channels AS channel[]), CAST(:addresses AS text[]),
                    CAST(:hashes AS text[])) AS w(channel, address, address_sha256)
    ), dropped AS (
        DELETE FROM suppressions s USING wanted w
        WHERE s.channel = w.channel AND s.address = w.address
    ), logged AS (
        UPDATE suppression_changes c SET address = 'sha256:' || w.address_sha256
        FROM wanted w WHERE c.channel = w.channel AND c.address = w.address
    )
    INSERT INTO hashed_suppressions (channel, address_sha256)
    SELECT channel, address_sha256 FROM wanted ORDER BY channel, address_sha256
    ON CONFLICT DO NOTHING
    """
)
"""The addresses' suppressions in clear give way to hashed ones, and the suppression log
names them by their hash (who added or removed one stays answerable)."""

_AUDIT = text(
    """
    INSERT INTO contact_erasures (contact_sha256, actor, erased_at, enrollments, events,
                                  dispatches, addresses)
    VALUES (:contact_sha256, :actor, :erased_at, :enrollments, :events, :dispatches, :addresses)
    """
)

_LAST_AUDIT = text(
    "SELECT actor, erased_at, enrollments, events, dispatches, addresses FROM contact_erasures"
    " WHERE contact_sha256 = :contact_sha256 ORDER BY erased_at DESC, id DESC LIMIT 1"
)


def _metadata_addresses(metadata: dict[str, Any]) -> Iterable[tuple[Channel, str]]:
    """Every usable address the metadata holds, on either channel (a template that sends on
    one channel may still have been given the other's address)."""
    for channel, key in addresses.METADATA_KEY.items():
        raw = metadata.get(key)
        if isinstance(raw, str) and addresses.problem(channel, raw) is None:
            yield channel, addresses.normalize(channel, raw)


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def erase_contact(session: AsyncSession, raw_contact_id: Any, actor: str) -> Erasure:
    """Erase the contact's personal data everywhere (one transaction, the caller's). A
    contact already erased: nothing changes, the earlier erasure is returned. A contact with
    no enrollment: NOT_FOUND on ``contact_id``, nothing written."""
    contact_id = check_contact_id(raw_contact_id)
    digest = contact_hash(contact_id)
    erased_id = erased_contact_id(contact_id)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENROLLMENT_GATE})
    rows = (await session.execute(_LOCK, {"contact_ids": [contact_id, erased_id]})).all()
    if not rows:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no enrollment of contact {contact_id!r}", ("contact_id",)
        )
    pending = [row.id for row in rows if row.erased_at is None]
    if not pending:
        return await _earlier(session, digest, max(row.erased_at for row in rows))
    found: set[tuple[Channel, str]] = set()
    for row in rows:
        found.update(_metadata_addresses(row.metadata))
    stored = await session.execute(_ADDRESSES, {"ids": pending})
    found.update((Channel(channel), address) for channel, address in stored.all())
    wanted = sorted(found)

    erased_at = (
        (await session.execute(_ERASE_ENROLLMENTS, {"ids": pending, "erased_id": erased_id}))
        .scalars()
        .first()
    )
    # Running enrollments of these addresses under other contact ids stop, as for any new
    # suppression (the senders compare addresses in clear, never the hashes).
    for channel in Channel:
        on_channel = [address for c, address in wanted if c is channel]
        if on_channel:
            await stop_running(session, channel, on_channel, "unsubscribed")
    await session.execute(
        text("DELETE FROM enrollment_addresses WHERE enrollment_id = ANY(:ids)"), {"ids": pending}
    )
    events = (await session.execute(_CLEAR_EVENTS, {"ids": pending})).rowcount  # type: ignore[attr-defined]
    orphans = (
        await session.execute(
            _CLEAR_ORPHANS,
            {
                "refs": [str(i) for i in pending],
                "patterns": [_like_pattern(address) for _, address in wanted],
            },
        )
    ).rowcount  # type: ignore[attr-defined]
    dispatches = (
        await session.execute(_CLEAR_DISPATCHES, {"ids": pending, "marker": ERASED_ERROR})
    ).rowcount  # type: ignore[attr-defined]
    if wanted:
        await session.execute(
            _HASH_SUPPRESSIONS,
            {
                "channels": [c.value for c, _ in wanted],
                "addresses": [a for _, a in wanted],
                "hashes": [addresses.address_hash(a) for _, a in wanted],
            },
        )
    erasure = Erasure(
        contact_sha256=digest,
        actor=actor,
        erased_at=erased_at,
        enrollments=len(pending),
        events=int(events) + int(orphans),
        dispatches=int(dispatches),
        addresses=len(wanted),
        already_erased=False,
    )
    await session.execute(
        _AUDIT,
        {
            "contact_sha256": digest,
            "actor": actor,
            "erased_at": erased_at,
            "enrollments": erasure.enrollments,
            "events": erasure.events,
            "dispatches": erasure.dispatches,
            "addresses": erasure.addresses,
        },
    )
    return erasure


async def _earlier(session: AsyncSession, digest: str, erased_at: datetime) -> Erasure:
    """The latest erasure of the contact, as its audit row has it."""
    row = (await session.execute(_LAST_AUDIT, {"contact_sha256": digest})).first()
    if row is None:  # erased by hand, without an audit row: the enrollments still say when
        return Erasure(digest, "unknown", erased_at, 0, 0, 0, 0, already_erased=True)
    return Erasure(
        contact_sha256=digest,
        actor=row.actor,
        erased_at=row.erased_at,
        enrollments=row.enrollments,
        events=row.events,
        dispatches=row.dispatches,
        addresses=row.addresses,
        already_erased=True,
    )
