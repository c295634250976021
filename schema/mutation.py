"""The root Mutation: every field needs the 'write' scope and is one transaction."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers.mutations import templates
from resolvers.mutations.common import Outcome
from schema.inputs import (
    CreateTemplateInput,
    EmailStepInput,
    LinkedInStepInput,
    UpdateEmailStepInput,
    UpdateLinkedInStepInput,
    UpdateTemplateInput,
)
from schema.payloads import EmailStepPayload, LinkedInStepPayload, TemplatePayload
from schema.permissions import CanWrite


async def _loaded(info: Info, loader: str, outcome: Outcome) -> Any:
    if outcome.entity_id is None:
        return None
    return await getattr(info.context.loaders, loader).load(outcome.entity_id)


async def _template_payload(info: Info, outcome: Outcome) -> TemplatePayload:
    return TemplatePayload(
        template=await _loaded(info, "template_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _email_step_payload(info: Info, outcome: Outcome) -> EmailStepPayload:
    return EmailStepPayload(
        step=await _loaded(info, "email_step_by_id", outcome),
        errors=outcome.errors,  # type: ignore[arg-type]
    )


async def _linkedin_step_payload(info: Info, outcome: Outcome) -> LinkedInStepPayload:
    return LinkedInStepPayload(
        step=await _loaded(info, "linkedin_step_by_id", outcome),
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
