"""The root Mutation: every field needs the 'write' scope and is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types import Info

from app.services.enrollment import Moved
from resolvers.mutations import (
    enrollments,
    erasure,
    events,
    instances,
    replies,
    sending,
    templates,
)
from resolvers.mutations.common import Outcome
from schema.inputs import (
    AddSuppressionInput,
    CreateInstanceInput,
    CreateTemplateInput,
    EmailStepInput,
    EnrollContactInput,
    LinkedInStepInput,
    RecordEventInput,
    UpdateEmailStepInput,
    UpdateLinkedInStepInput,
    UpdateTemplateInput,
)
from schema.payloads import (
    BulkEnrollPayload,
    ClassifyReplyPayload,
    DispatchPayload,
    EmailStepPayload,
    EnrollmentPayload,
    EraseContactPayload,
    InstancePayload,
    LinkedInStepPayload,
    MovedContact,
    RecordEventPayload,
    RemoveSuppressionPayload,
    SkippedContact,
    SuppressionPayload,
    TemplatePayload,
)
from schema.permissions import CanAdmin, CanWrite
from schema.types.enums import Channel, CrossCampaignPolicy, ReplySentiment
from schema.types.erasure import ContactErasure

P = TypeVar("P")


_PAYLOADS: dict[type, tuple[str, str]] = {
    TemplatePayload: ("template", "template_by_id"),
    EmailStepPayload: ("step", "email_step_by_id"),
    LinkedInStepPayload: ("step", "linkedin_step_by_id"),
    InstancePayload: ("instance", "instance_by_id"),
    EnrollmentPayload: ("enrollment", "enrollment_by_id"),
    DispatchPayload: ("dispatch", "dispatch_by_id"),
    SuppressionPayload: ("suppression", "suppression_by_id"),
}


async def _payload(info: Info, payload_type: type[P], outcome: Outcome[Any]) -> P:
    """The payload with its entity read back through a fresh loader, or with the errors."""
    field, loader = _PAYLOADS[payload_type]
    entity = None
    if outcome.entity_id is not None:
        entity = await getattr(info.context.loaders, loader).load(outcome.entity_id)
    return payload_type(**{field: entity, "errors": outcome.errors})


POLICY = (
    "What to do with contacts open in another instance; default: the template's"
    " settings.cross_campaign_policy (allow, skip or move), else ALLOW."
)


def _moved(moved: Sequence[Moved]) -> list[MovedContact]:
    return [
        MovedContact(
            index=m.index,
            contact_id=strawberry.ID(m.contact_id),
            from_instance_id=strawberry.ID(str(m.from_instance_id)),
            from_enrollment_id=strawberry.ID(str(m.from_enrollment_id)),
        )
        for m in moved
    ]


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_template(self, info: Info, input: CreateTemplateInput) -> TemplatePayload:
        return await _payload(
            info, TemplatePayload, await templates.create_template(info.context, input)
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def update_template(
        self, info: Info, id: strawberry.ID, input: UpdateTemplateInput
    ) -> TemplatePayload:
        outcome = await templates.update_template(info.context, id, input)
        return await _payload(info, TemplatePayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def archive_template(self, info: Info, id: strawberry.ID) -> TemplatePayload:
        return await _payload(
            info, TemplatePayload, await templates.archive_template(info.context, id)
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def add_email_step(
        self, info: Info, template_id: strawberry.ID, input: EmailStepInput
    ) -> EmailStepPayload:
        outcome = await templates.add_step(info.context, "email", template_id, input)
        return await _payload(info, EmailStepPayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def update_email_step(
        self, info: Info, id: strawberry.ID, input: UpdateEmailStepInput
    ) -> EmailStepPayload:
        outcome = await templates.update_step(info.context, "email", id, input)
        return await _payload(info, EmailStepPayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def remove_email_step(self, info: Info, id: strawberry.ID) -> EmailStepPayload:
        outcome = await templates.remove_step(info.context, "email", id)
        return await _payload(info, EmailStepPayload, outcome)

    @strawberry.mutation(name="addLinkedInStep", permission_classes=[CanWrite])
    async def add_linkedin_step(
        self, info: Info, template_id: strawberry.ID, input: LinkedInStepInput
    ) -> LinkedInStepPayload:
        outcome = await templates.add_step(info.context, "linkedin", template_id, input)
        return await _payload(info, LinkedInStepPayload, outcome)

    @strawberry.mutation(name="updateLinkedInStep", permission_classes=[CanWrite])
    async def update_linkedin_step(
        self, info: Info, id: strawberry.ID, input: UpdateLinkedInStepInput
    ) -> LinkedInStepPayload:
        outcome = await templates.update_step(info.context, "linkedin", id, input)
        return await _payload(info, LinkedInStepPayload, outcome)

    @strawberry.mutation(name="removeLinkedInStep", permission_classes=[CanWrite])
    async def remove_linkedin_step(self, info: Info, id: strawberry.ID) -> LinkedInStepPayload:
        outcome = await templates.remove_step(info.context, "linkedin", id)
        return await _payload(info, LinkedInStepPayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_instance(self, info: Info, input: CreateInstanceInput) -> InstancePayload:
        return await _payload(
            info, InstancePayload, await instances.create_instance(info.context, input)
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def start_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        return await _payload(
            info, InstancePayload, await instances.transition(info.context, id, "start")
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def pause_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        return await _payload(
            info, InstancePayload, await instances.transition(info.context, id, "pause")
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def resume_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "resume")
        return await _payload(info, InstancePayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def complete_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "complete")
        return await _payload(info, InstancePayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def fail_instance(self, info: Info, id: strawberry.ID, reason: str) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "fail", reason)
        return await _payload(info, InstancePayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def enroll_contact(
        self,
        info: Info,
        instance_id: strawberry.ID,
        input: EnrollContactInput,
        policy: Annotated[
            CrossCampaignPolicy | None, strawberry.argument(description=POLICY)
        ] = None,
    ) -> EnrollmentPayload:
        outcome = await enrollments.enroll_contact(info.context, instance_id, input, policy)
        if outcome.value is None:
            return EnrollmentPayload(enrollment=None, errors=outcome.errors)  # type: ignore[arg-type]
        entity = await info.context.loaders.enrollment_by_id.load(str(outcome.value.enrollment_id))
        return EnrollmentPayload(enrollment=entity, errors=[], moved=_moved(outcome.value.moved))

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Up to 10,000 contacts; one transaction; repeat-safe.",
    )
    async def bulk_enroll(
        self,
        info: Info,
        instance_id: strawberry.ID,
        contacts: list[EnrollContactInput],
        policy: Annotated[
            CrossCampaignPolicy | None, strawberry.argument(description=POLICY)
        ] = None,
    ) -> BulkEnrollPayload:
        outcome = await enrollments.bulk_enroll(info.context, instance_id, contacts, policy)
        if outcome.value is None:
            return BulkEnrollPayload(
                enrolled_count=0,
                skipped_count=0,
                skipped=[],
                errors=outcome.errors,  # type: ignore[arg-type]
                enrollment_ids=[],
            )
        ids = [str(i) for i in outcome.value.enrolled_ids]
        skipped = [
            SkippedContact(
                index=s.index,
                contact_id=strawberry.ID(s.contact_id),
                reason=s.reason,  # type: ignore[arg-type]
                message=s.message,
                other_instance_id=(
                    None if s.other_instance_id is None else strawberry.ID(str(s.other_instance_id))
                ),
            )
            for s in outcome.value.skipped
        ]
        moved = _moved(outcome.value.moved)
        return BulkEnrollPayload(
            enrolled_count=len(ids),
            skipped_count=len(skipped),
            skipped=skipped,
            moved=moved,
            moved_count=len(moved),
            errors=[],
            enrollment_ids=ids,
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def pause_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        return await _payload(
            info, EnrollmentPayload, await enrollments.change(info.context, id, "pause")
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def resume_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        outcome = await enrollments.change(info.context, id, "resume")
        return await _payload(info, EnrollmentPayload, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def remove_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        outcome = await enrollments.change(info.context, id, "remove")
        return await _payload(info, EnrollmentPayload, outcome)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="The same ingestion path as the generic webhook, for tools and tests.",
    )
    async def record_event(self, info: Info, input: RecordEventInput) -> RecordEventPayload:
        outcome = await events.record(info.context, input)
        if outcome.value is None:
            return RecordEventPayload(
                event=None,
                duplicate=False,
                errors=outcome.errors,  # type: ignore[arg-type]
            )
        event = await info.context.loaders.event_by_id.load(str(outcome.value.event_id))
        return RecordEventPayload(event=event, duplicate=outcome.value.duplicate, errors=[])

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description=(
            "Set a reply's sentiment, recording the API key's name and the time."
            " OUT_OF_OFFICE keeps (or puts back) its enrollment active and moves the next touch"
            " to returnDate (only with OUT_OF_OFFICE; by default in 3 days, and at most 90 days"
            " ahead, both settings), unless something of higher precedence happened;"
            " UNSUBSCRIBE_REQUEST unsubscribes and suppresses. The latest classification wins."
        ),
    )
    async def classify_reply(
        self,
        info: Info,
        event_id: strawberry.ID,
        sentiment: ReplySentiment,
        return_date: datetime | None = None,
    ) -> ClassifyReplyPayload:
        outcome = await replies.classify(info.context, event_id, sentiment, return_date)
        if outcome.value is None:
            return ClassifyReplyPayload(event=None, enrollment=None, errors=outcome.errors)  # type: ignore[arg-type]
        loaders = info.context.loaders
        return ClassifyReplyPayload(
            event=await loaders.event_by_id.load(str(outcome.value.event_id)),
            enrollment=await loaders.enrollment_by_id.load(str(outcome.value.enrollment_id)),
            errors=[],
        )

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description=(
            "Send a failed or unknown touch of a running enrollment again (attempts counted"
            " afresh)."
        ),
    )
    async def retry_dispatch(self, info: Info, id: strawberry.ID) -> DispatchPayload:
        return await _payload(info, DispatchPayload, await sending.retry(info.context, id))

    @strawberry.mutation(
        permission_classes=[CanAdmin],
        description=(
            "Suppress an address everywhere: running enrollments with it stop at once, new"
            " ones are skipped. Adding one that is already there changes nothing."
        ),
    )
    async def add_suppression(self, info: Info, input: AddSuppressionInput) -> SuppressionPayload:
        return await _payload(info, SuppressionPayload, await sending.add(info.context, input))

    @strawberry.mutation(
        permission_classes=[CanAdmin],
        description="Allow an address to be enrolled again (logged with who removed it).",
    )
    async def remove_suppression(
        self,
        info: Info,
        address: str,
        channel: Channel = Channel.EMAIL,  # type: ignore[attr-defined]
    ) -> RemoveSuppressionPayload:
        outcome = await sending.remove(info.context, channel, address)
        return RemoveSuppressionPayload(
            removed=bool(outcome.value),
            errors=outcome.errors,  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        permission_classes=[CanAdmin],
        description=(
            "Erase a contact's personal data (metadata, addresses, the providers' fields of its"
            " events) from every enrollment and event, keeping the counts; its addresses stay"
            " suppressed as hashes. Erasing it again changes nothing."
        ),
    )
    async def erase_contact(self, info: Info, contact_id: str) -> EraseContactPayload:
        outcome = await erasure.erase(info.context, contact_id)
        done = outcome.value
        return EraseContactPayload(
            erasure=None
            if done is None
            else ContactErasure(
                contact_hash=done.contact_sha256,
                actor=done.actor,
                erased_at=done.erased_at,
                enrollments=done.enrollments,
                events=done.events,
                dispatches=done.dispatches,
                addresses=done.addresses,
            ),
            already_erased=bool(done and done.already_erased),
            errors=outcome.errors,  # type: ignore[arg-type]
        )
