"""The root Mutation: every field needs the 'write' scope and is one transaction."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers.mutations import enrollments, events, instances, templates
from resolvers.mutations.common import Outcome
from schema.inputs import (
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
    EmailStepPayload,
    EnrollmentPayload,
    InstancePayload,
    LinkedInStepPayload,
    RecordEventPayload,
    TemplatePayload,
)
from schema.permissions import CanWrite


async def _loaded(info: Info, loader: str, outcome: Outcome[Any]) -> Any:
    if outcome.entity_id is None:
        return None
    return await getattr(info.context.loaders, loader).load(outcome.entity_id)


async def _template_payload(info: Info, outcome: Outcome[Any]) -> TemplatePayload:
    return TemplatePayload(
        template=await _loaded(info, "template_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _email_step_payload(info: Info, outcome: Outcome[Any]) -> EmailStepPayload:
    return EmailStepPayload(
        step=await _loaded(info, "email_step_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _linkedin_step_payload(info: Info, outcome: Outcome[Any]) -> LinkedInStepPayload:
    return LinkedInStepPayload(
        step=await _loaded(info, "linkedin_step_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _instance_payload(info: Info, outcome: Outcome[Any]) -> InstancePayload:
    return InstancePayload(
        instance=await _loaded(info, "instance_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _enrollment_payload(info: Info, outcome: Outcome[Any]) -> EnrollmentPayload:
    return EnrollmentPayload(
        enrollment=await _loaded(info, "enrollment_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_template(self, info: Info, input: CreateTemplateInput) -> TemplatePayload:
        return await _template_payload(info, await templates.create_template(info.context, input))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def update_template(
        self, info: Info, id: strawberry.ID, input: UpdateTemplateInput
    ) -> TemplatePayload:
        outcome = await templates.update_template(info.context, id, input)
        return await _template_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def archive_template(self, info: Info, id: strawberry.ID) -> TemplatePayload:
        return await _template_payload(info, await templates.archive_template(info.context, id))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def add_email_step(
        self, info: Info, template_id: strawberry.ID, input: EmailStepInput
    ) -> EmailStepPayload:
        outcome = await templates.add_step(info.context, "email", template_id, input)
        return await _email_step_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def update_email_step(
        self, info: Info, id: strawberry.ID, input: UpdateEmailStepInput
    ) -> EmailStepPayload:
        outcome = await templates.update_step(info.context, "email", id, input)
        return await _email_step_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def remove_email_step(self, info: Info, id: strawberry.ID) -> EmailStepPayload:
        outcome = await templates.remove_step(info.context, "email", id)
        return await _email_step_payload(info, outcome)

    @strawberry.mutation(name="addLinkedInStep", permission_classes=[CanWrite])
    async def add_linkedin_step(
        self, info: Info, template_id: strawberry.ID, input: LinkedInStepInput
    ) -> LinkedInStepPayload:
        outcome = await templates.add_step(info.context, "linkedin", template_id, input)
        return await _linkedin_step_payload(info, outcome)

    @strawberry.mutation(name="updateLinkedInStep", permission_classes=[CanWrite])
    async def update_linkedin_step(
        self, info: Info, id: strawberry.ID, input: UpdateLinkedInStepInput
    ) -> LinkedInStepPayload:
        outcome = await templates.update_step(info.context, "linkedin", id, input)
        return await _linkedin_step_payload(info, outcome)

    @strawberry.mutation(name="removeLinkedInStep", permission_classes=[CanWrite])
    async def remove_linkedin_step(self, info: Info, id: strawberry.ID) -> LinkedInStepPayload:
        outcome = await templates.remove_step(info.context, "linkedin", id)
        return await _linkedin_step_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_instance(self, info: Info, input: CreateInstanceInput) -> InstancePayload:
        return await _instance_payload(info, await instances.create_instance(info.context, input))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def start_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        return await _instance_payload(info, await instances.transition(info.context, id, "start"))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def pause_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        return await _instance_payload(info, await instances.transition(info.context, id, "pause"))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def resume_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "resume")
        return await _instance_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def complete_instance(self, info: Info, id: strawberry.ID) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "complete")
        return await _instance_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def fail_instance(self, info: Info, id: strawberry.ID, reason: str) -> InstancePayload:
        outcome = await instances.transition(info.context, id, "fail", reason)
        return await _instance_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def enroll_contact(
        self, info: Info, instance_id: strawberry.ID, input: EnrollContactInput
    ) -> EnrollmentPayload:
        outcome = await enrollments.enroll_contact(info.context, instance_id, input)
        return await _enrollment_payload(info, outcome)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Up to 10,000 contacts; one transaction; repeat-safe.",
    )
    async def bulk_enroll(
        self, info: Info, instance_id: strawberry.ID, contacts: list[EnrollContactInput]
    ) -> BulkEnrollPayload:
        outcome = await enrollments.bulk_enroll(info.context, instance_id, contacts)
        if outcome.value is None:
            return BulkEnrollPayload(
                enrolled_count=0,
                skipped_count=0,
                errors=outcome.errors,  # type: ignore[arg-type]
                enrollment_ids=[],
            )
        ids = [str(i) for i in outcome.value.enrolled_ids]
        return BulkEnrollPayload(
            enrolled_count=len(ids),
            skipped_count=outcome.value.skipped,
            errors=[],
            enrollment_ids=ids,
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def pause_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        return await _enrollment_payload(info, await enrollments.change(info.context, id, "pause"))

    @strawberry.mutation(permission_classes=[CanWrite])
    async def resume_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        outcome = await enrollments.change(info.context, id, "resume")
        return await _enrollment_payload(info, outcome)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def remove_enrollment(self, info: Info, id: strawberry.ID) -> EnrollmentPayload:
        outcome = await enrollments.change(info.context, id, "remove")
        return await _enrollment_payload(info, outcome)

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
