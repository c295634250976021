"""Enrolling contacts (one, or up to 10,000 set-based) and per-contact pause/resume/remove.

Malformed input (a contact id or metadata the API cannot store) refuses the whole request;
a well-formed contact that cannot be enrolled here (no address for a channel, a variable the
steps need, a suppressed address, already enrolled, repeated, open in another instance under
the SKIP policy) is skipped with its reason. Under MOVE, a contact's open enrollments elsewhere
are removed in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.addresses import ADDRESS_MAX, METADATA_KEY, metadata_address_sql
from app.domain.enums import (
    OPEN_ENROLLMENT_STATUSES,
    POLICY_SETTING,
    Channel,
    CrossCampaignPolicy,
    EnrollmentStatus,
    ErrorCode,
    InstanceStatus,
    SkipReason,
)
from app.domain.errors import DomainError, DomainErrors
from app.domain.limits import BULK_ENROLL_MAX, CONTACT_ID_MAX
from app.models import CampaignInstance, CampaignTemplate, Enrollment
from app.services.audience import Audience, audience_of, suppressed
from app.services.erasure import hold_off_erasures
from app.services.sending.wake import wake_senders
from app.services.sequence import step_after
from app.services.validation import Problems, require_id


@dataclass(frozen=True, slots=True)
class ContactInput:
    contact_id: Any
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class CheckedContact:
    contact_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A contact of the request that was not enrolled, and why."""

    index: int
    contact_id: str
    reason: SkipReason
    message: str
    repeats: int | None = None
    """For DUPLICATE_IN_REQUEST: the index of the first occurrence, which was kept."""
    other_instance_id: uuid.UUID | None = None
    """For ACTIVE_ELSEWHERE: the instance the contact is open in (the earliest enrolled)."""


@dataclass(frozen=True, slots=True)
class Moved:
    """A contact of the request enrolled here under MOVE, and the enrollment it left."""

    index: int
    contact_id: str
    from_instance_id: uuid.UUID
    from_enrollment_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class BulkResult:
    enrolled_ids: list[uuid.UUID]
    skipped: list[Skipped]
    moved: list[Moved] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EnrollResult:
    enrollment_id: uuid.UUID
    moved: list[Moved] = field(default_factory=list)


def check_contact(contact: ContactInput) -> tuple[CheckedContact | None, list[DomainError]]:
    """Validate one contact on its own, as the CSV importer does row by row."""
    p = Problems()
    raw_id = contact.contact_id
    contact_id = p.text(
        "contact_id",
        raw_id if isinstance(raw_id, str) else None,
        required=True,
        min_length=1,
        max_length=CONTACT_ID_MAX,
    )
    metadata = p.json_object("metadata", {} if contact.metadata is None else contact.metadata)
    if p.errors or contact_id is None or metadata is None:
        return None, p.errors
    return CheckedContact(contact_id, metadata), []


def _addresses_of(channel: Channel) -> str:
    """The new enrollments' normalized addresses on ``channel`` (when the template uses it)."""
    address = metadata_address_sql(channel, "metadata")
    return f"""
        SELECT id, CAST('{channel.value}' AS channel), {address} FROM inserted
        WHERE CAST(:{channel.value} AS boolean)
          AND char_length({address}) BETWEEN 3 AND {ADDRESS_MAX}"""


_INSERT = text(
    f"""
    WITH input AS (
        SELECT contact_id, metadata::jsonb AS metadata, ordinality
        FROM unnest(CAST(:contact_ids AS text[]), CAST(:metadata AS text[]))
             WITH ORDINALITY AS u(contact_id, metadata, ordinality)
    ), inserted AS (
        INSERT INTO enrollments (instance_id, contact_id, status, metadata, next_action_at)
        SELECT :instance_id, contact_id, CAST(:status AS enrollment_status), metadata,
               now() + make_interval(hours => CAST(:delay AS int))
        FROM input ORDER BY ordinality
        ON CONFLICT (instance_id, contact_id) DO NOTHING
        RETURNING id, contact_id, metadata
    ), addressed AS (
        INSERT INTO enrollment_addresses (enrollment_id, channel, address)
        {_addresses_of(Channel.EMAIL)}
        UNION ALL
        {_addresses_of(Channel.LINKEDIN)}
    ), counted AS (
        UPDATE campaign_instances
        SET total_enrolled = total_enrolled + (SELECT count(*) FROM inserted)
        WHERE id = :instance_id
    )
    SELECT id, contact_id FROM inserted
    """
)


async def _open_instance(session: AsyncSession, instance_id: str) -> CampaignInstance:
    """Lock the instance against transitions (and other enrollers: the counter row is shared),
    after any erasure in progress (``erasure.hold_off_erasures``)."""
    key = require_id("instance_id", instance_id)
    await hold_off_erasures(session)
    instance = await session.scalar(
        select(CampaignInstance).where(CampaignInstance.id == key).with_for_update(key_share=True)
    )
    if instance is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no instance with id {instance_id}", ("instance_id",)
        )
    if instance.status in (InstanceStatus.COMPLETED, InstanceStatus.FAILED):
        raise DomainError(
            ErrorCode.INSTANCE_CLOSED,
            f"instance {instance.id} is {instance.status.value}; it takes no new contacts",
            ("instance_id",),
        )
    return instance


async def _audience(session: AsyncSession, instance: CampaignInstance) -> Audience:
    template = await session.get_one(CampaignTemplate, instance.template_id)
    return await audience_of(session, template.id, template.type)


async def _initial_state(
    session: AsyncSession, instance: CampaignInstance
) -> tuple[EnrollmentStatus, int | None]:
    """Draft instances enroll as ``enrolled``; running ones as ``active``, due after step 1."""
    if instance.status is InstanceStatus.DRAFT:
        return EnrollmentStatus.ENROLLED, None
    template = await session.get_one(CampaignTemplate, instance.template_id)
    first = await step_after(session, template.id, template.type)
    return EnrollmentStatus.ACTIVE, first.delay_hours if first else None


async def _insert(
    session: AsyncSession,
    instance: CampaignInstance,
    audience: Audience,
    contacts: Sequence[CheckedContact],
) -> list[Any]:
    status, delay = await _initial_state(session, instance)
    rows = await session.execute(
        _INSERT,
        {
            "instance_id": instance.id,
            "status": status.value,
            "delay": delay,
            **{c.value: c in audience.channels for c in Channel},
            "contact_ids": [c.contact_id for c in contacts],
            "metadata": [json.dumps(c.metadata) for c in contacts],
        },
    )
    inserted = list(rows.all())
    if inserted and status is EnrollmentStatus.ACTIVE:
        await wake_senders(session)
    return inserted


_OPEN = ", ".join(f"'{s.value}'" for s in OPEN_ENROLLMENT_STATUSES)
_ELSEWHERE = f"""
    FROM enrollments e
    WHERE e.contact_id = ANY(CAST(:contact_ids AS text[]))
      AND e.status IN ({_OPEN})
      AND e.instance_id <> :instance_id
      AND NOT EXISTS (SELECT 1 FROM enrollments h
                      WHERE h.instance_id = :instance_id AND h.contact_id = e.contact_id)
"""
"""The open enrollments, in other instances, of the request's contacts that are not already in
this one (those are ALREADY_ENROLLED whatever the policy): the partial index on contact_id
answers it in one statement for 10,000 contacts."""

_FIRST_ELSEWHERE = text(
    f"SELECT DISTINCT ON (e.contact_id) e.contact_id, e.instance_id {_ELSEWHERE}"
    " ORDER BY e.contact_id, e.enrolled_at, e.id"
)

_MOVE_AWAY = text(
    f"""
    WITH leaving AS (
        SELECT e.id {_ELSEWHERE}
        ORDER BY e.id
        FOR NO KEY UPDATE
    )
    UPDATE enrollments AS e
    SET status = 'removed', next_action_at = NULL,
        removal_reason = :reason, moved_to_instance_id = :instance_id
    FROM leaving WHERE e.id = leaving.id
    RETURNING e.id, e.contact_id, e.instance_id
    """
)
"""MOVE: lock the enrollments to leave in id order (two requests moving the same contacts in
opposite directions then wait for each other instead of deadlocking) and remove them."""

CONTACT_LOCK_BUCKETS = 64
"""Contacts hash into this many advisory locks; see ``_lock_contacts``."""

_LOCK_CONTACTS = text(
    "SELECT count(pg_advisory_xact_lock(CAST(:namespace AS int), bucket)) FROM ("
    f"  SELECT DISTINCT hashtext(c) & {CONTACT_LOCK_BUCKETS - 1} AS bucket"
    "   FROM unnest(CAST(:contact_ids AS text[])) AS c ORDER BY bucket) AS buckets"
)
_CONTACT_LOCK_NAMESPACE = 0x25C0


async def _lock_contacts(session: AsyncSession, contact_ids: Sequence[str]) -> None:
    """Serialize SKIP and MOVE requests that share contacts, so each sees what the other did.

    Row locks alone cannot: two requests enrolling a contact who is open nowhere yet (or whose
    open enrollment one of them has just removed) would each see no other enrollment and both
    enroll. The contacts' buckets are locked in ascending order (no deadlock between requests),
    and the next statement, under READ COMMITTED, sees everything committed before them. A
    bounded number of buckets keeps a 10,000-contact request to 64 locks, within PostgreSQL's
    lock table; ALLOW requests take none.
    """
    await session.execute(
        _LOCK_CONTACTS, {"namespace": _CONTACT_LOCK_NAMESPACE, "contact_ids": list(contact_ids)}
    )


def _policy(
    template: CampaignTemplate, requested: CrossCampaignPolicy | None
) -> CrossCampaignPolicy:
    """The request's policy, else the template's setting (a CHECK keeps it a known value),
    else ALLOW."""
    if requested is not None:
        return requested
    return CrossCampaignPolicy((template.settings or {}).get(POLICY_SETTING, "allow"))


async def _apply_policy(
    session: AsyncSession,
    instance: CampaignInstance,
    policy: CrossCampaignPolicy,
    admitted: Sequence[tuple[int, CheckedContact]],
) -> tuple[list[tuple[int, CheckedContact]], list[Skipped], list[Moved]]:
    """Under SKIP, set aside the contacts open in another instance; under MOVE, remove those
    other enrollments. Returns the contacts to enroll, the skipped and the moved."""
    if policy is CrossCampaignPolicy.ALLOW or not admitted:
        return list(admitted), [], []
    contact_ids = [c.contact_id for _, c in admitted]
    await _lock_contacts(session, contact_ids)
    params = {"instance_id": instance.id, "contact_ids": contact_ids}
    if policy is CrossCampaignPolicy.SKIP:
        elsewhere = {
            row.contact_id: row.instance_id
            for row in await session.execute(_FIRST_ELSEWHERE, params)
        }
        kept = [(i, c) for i, c in admitted if c.contact_id not in elsewhere]
        skipped = [
            Skipped(
                index,
                c.contact_id,
                SkipReason.ACTIVE_ELSEWHERE,
                f"open in instance {elsewhere[c.contact_id]}",
                other_instance_id=elsewhere[c.contact_id],
            )
            for index, c in admitted
            if c.contact_id in elsewhere
        ]
        return kept, skipped, []
    index_of = {c.contact_id: index for index, c in admitted}
    rows = await session.execute(
        _MOVE_AWAY, params | {"reason": f"moved to instance {instance.id}"}
    )
    moved = sorted(
        (Moved(index_of[row.contact_id], row.contact_id, row.instance_id, row.id) for row in rows),
        key=lambda m: (m.index, str(m.from_instance_id)),
    )
    return list(admitted), [], moved


async def enroll_contact(
    session: AsyncSession,
    instance_id: str,
    contact: ContactInput,
    policy: CrossCampaignPolicy | None = None,
) -> EnrollResult:
    checked, errors = check_contact(contact)
    if errors:
        raise DomainErrors(errors)
    assert checked is not None
    instance = await _open_instance(session, instance_id)
    audience = await _audience(session, instance)
    refusal = audience.refusal(checked.metadata)
    if refusal is not None:
        raise DomainError(ErrorCode(refusal.reason.value), refusal.message, refusal.field)
    blocked = await suppressed(session, audience.addresses(checked.metadata))
    if blocked:
        channel, _ = sorted(blocked)[0]
        key = METADATA_KEY[channel]
        raise DomainError(
            ErrorCode.SUPPRESSED,
            f"metadata.{key} is on the suppression list: nothing is sent to it again",
            ("metadata", key),
        )
    template = await session.get_one(CampaignTemplate, instance.template_id)
    _, skipped, moved = await _apply_policy(
        session, instance, _policy(template, policy), [(0, checked)]
    )
    if skipped:
        raise DomainError(
            ErrorCode.ACTIVE_ELSEWHERE,
            f"contact {checked.contact_id!r} is {skipped[0].message} and the policy is SKIP",
            ("contact_id",),
        )
    inserted = await _insert(session, instance, audience, [checked])
    if not inserted:
        existing = await session.scalar(
            select(Enrollment.id).where(
                Enrollment.instance_id == instance.id, Enrollment.contact_id == checked.contact_id
            )
        )
        raise DomainError(
            ErrorCode.ALREADY_ENROLLED,
            f"contact {checked.contact_id!r} is already in this instance as enrollment {existing}",
            ("contact_id",),
        )
    return EnrollResult(uuid.UUID(str(inserted[0].id)), moved)


async def bulk_enroll(
    session: AsyncSession,
    instance_id: str,
    contacts: Sequence[ContactInput],
    policy: CrossCampaignPolicy | None = None,
) -> BulkResult:
    """Malformed input refuses the batch; every other contact is enrolled or reported skipped
    (the first occurrence of a repeated contact id wins). Safe to repeat."""
    if len(contacts) > BULK_ENROLL_MAX:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED,
            f"at most {BULK_ENROLL_MAX} contacts per request, got {len(contacts)}",
            ("contacts",),
        )
    errors: list[DomainError] = []
    unique: dict[str, tuple[int, CheckedContact]] = {}
    skipped: list[Skipped] = []
    for index, contact in enumerate(contacts):
        checked, problems = check_contact(contact)
        errors.extend(
            DomainError(e.code, f"contact {index}: {e.message}", ("contacts", str(index), *e.field))
            for e in problems
        )
        if checked is None:
            continue
        if checked.contact_id in unique:
            first = unique[checked.contact_id][0]
            skipped.append(
                Skipped(
                    index,
                    checked.contact_id,
                    SkipReason.DUPLICATE_IN_REQUEST,
                    f"repeats contact {first} of this request",
                    repeats=first,
                )
            )
        else:
            unique[checked.contact_id] = (index, checked)
    if errors:
        raise DomainErrors(errors)
    instance = await _open_instance(session, instance_id)
    audience = await _audience(session, instance)
    admitted: list[tuple[int, CheckedContact]] = []
    for index, checked in unique.values():
        refusal = audience.refusal(checked.metadata)
        if refusal is None:
            admitted.append((index, checked))
        else:
            skipped.append(Skipped(index, checked.contact_id, refusal.reason, refusal.message))
    blocked = await suppressed(
        session, (pair for _, c in admitted for pair in audience.addresses(c.metadata))
    )
    if blocked:
        kept = []
        for index, checked in admitted:
            hit = [pair for pair in audience.addresses(checked.metadata) if pair in blocked]
            if hit:
                key = METADATA_KEY[hit[0][0]]
                skipped.append(
                    Skipped(
                        index,
                        checked.contact_id,
                        SkipReason.SUPPRESSED,
                        f"metadata.{key} is on the suppression list",
                    )
                )
            else:
                kept.append((index, checked))
        admitted = kept
    template = await session.get_one(CampaignTemplate, instance.template_id)
    admitted, elsewhere, moved = await _apply_policy(
        session, instance, _policy(template, policy), admitted
    )
    skipped.extend(elsewhere)
    inserted = (
        await _insert(session, instance, audience, [c for _, c in admitted]) if admitted else []
    )
    new = {row.contact_id for row in inserted}
    skipped.extend(
        Skipped(index, c.contact_id, SkipReason.ALREADY_ENROLLED, "already in this instance")
        for index, c in admitted
        if c.contact_id not in new
    )
    return BulkResult(
        enrolled_ids=[uuid.UUID(str(row.id)) for row in inserted],
        skipped=sorted(skipped, key=lambda s: s.index),
        moved=moved,
    )


_PER_CONTACT = {
    "pause": ({EnrollmentStatus.ACTIVE, EnrollmentStatus.ENROLLED}, "paused"),
    "resume": ({EnrollmentStatus.PAUSED}, "resumed"),
    "remove": (
        {EnrollmentStatus.ACTIVE, EnrollmentStatus.ENROLLED, EnrollmentStatus.PAUSED},
        "removed",
    ),
}


async def change_enrollment(session: AsyncSession, enrollment_id: str, action: str) -> uuid.UUID:
    """pause (active/enrolled → paused), resume (paused → active, or enrolled while the
    instance is a draft), remove (any non-terminal → removed; events are kept)."""
    sources, verb = _PER_CONTACT[action]
    key = require_id("id", enrollment_id)
    enrollment = await session.scalar(
        select(Enrollment).where(Enrollment.id == key).with_for_update(key_share=True)
    )
    if enrollment is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no enrollment with id {enrollment_id}", ("id",))
    if enrollment.status not in sources:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"an enrollment that is {enrollment.status.value} cannot be {verb}",
            ("id",),
        )
    if action == "pause":
        enrollment.status = EnrollmentStatus.PAUSED
    elif action == "remove":
        enrollment.status = EnrollmentStatus.REMOVED
        enrollment.next_action_at = None
    else:
        await _resume(session, enrollment)
    await session.flush()
    return enrollment.id


async def _resume(session: AsyncSession, enrollment: Enrollment) -> None:
    instance = await session.get_one(CampaignInstance, enrollment.instance_id)
    if instance.status is InstanceStatus.DRAFT:
        enrollment.status = EnrollmentStatus.ENROLLED
        return
    enrollment.status = EnrollmentStatus.ACTIVE
    await wake_senders(session)
    if enrollment.next_action_at is None:
        template = await session.get_one(CampaignTemplate, instance.template_id)
        following = await step_after(session, template.id, template.type, enrollment.current_step)
        if following is not None:
            enrollment.next_action_at = await session.scalar(
                text("SELECT now() + make_interval(hours => :h)"), {"h": following.delay_hours}
            )
