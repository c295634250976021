"""Enrolling contacts (one, or up to 10,000 set-based) and per-contact pause/resume/remove.

Malformed input (a contact id or metadata the API cannot store) refuses the whole request;
a well-formed contact that cannot be enrolled here (no address for a channel, a variable the
steps need, a suppressed address, already enrolled, repeated) is skipped with its reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.addresses import ADDRESS_MAX, METADATA_KEY, metadata_address_sql
from app.domain.enums import Channel, EnrollmentStatus, ErrorCode, InstanceStatus, SkipReason
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


@dataclass(frozen=True, slots=True)
class BulkResult:
    enrolled_ids: list[uuid.UUID]
    skipped: list[Skipped]


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


async def enroll_contact(
    session: AsyncSession, instance_id: str, contact: ContactInput
) -> uuid.UUID:
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
    return uuid.UUID(str(inserted[0].id))


async def bulk_enroll(
    session: AsyncSession, instance_id: str, contacts: Sequence[ContactInput]
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
