"""Mutation payloads: the entity on success, or the errors that explain why nothing changed."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.errors import UserError
from schema.types.enrollments import Enrollment
from schema.types.enums import SkipReason
from schema.types.erasure import ContactErasure
from schema.types.events import CampaignEvent
from schema.types.instances import CampaignInstance
from schema.types.sending import Dispatch, Suppression
from schema.types.templates import CampaignTemplate, EmailStep, LinkedInStep


@strawberry.type
class TemplatePayload:
    template: CampaignTemplate | None
    errors: list[UserError]


@strawberry.type
class EmailStepPayload:
    step: EmailStep | None
    errors: list[UserError]


@strawberry.type(name="LinkedInStepPayload")
class LinkedInStepPayload:
    step: LinkedInStep | None
    errors: list[UserError]


@strawberry.type
class InstancePayload:
    instance: CampaignInstance | None
    errors: list[UserError]


@strawberry.type
class MovedContact:
    index: int = strawberry.field(description="The contact's position in the request (from 0).")
    contact_id: strawberry.ID
    from_instance_id: strawberry.ID = strawberry.field(
        description="The instance whose enrollment of the contact was removed."
    )
    from_enrollment_id: strawberry.ID = strawberry.field(
        description="That removed enrollment (status REMOVED)."
    )


@strawberry.type
class EnrollmentPayload:
    enrollment: Enrollment | None
    errors: list[UserError]
    moved: list[MovedContact] = strawberry.field(
        default_factory=list,
        description=(
            "enrollContact under MOVE: the contact's enrollments in other instances that were"
            " removed; empty otherwise."
        ),
    )


@strawberry.type
class SkippedContact:
    index: int = strawberry.field(description="The contact's position in the request (from 0).")
    contact_id: strawberry.ID
    reason: SkipReason
    message: str
    other_instance_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="ACTIVE_ELSEWHERE: the instance the contact is open in (the earliest).",
    )


@strawberry.type
class BulkEnrollPayload:
    enrolled_count: int = strawberry.field(description="How many new enrollments were created.")
    skipped_count: int = strawberry.field(
        description="How many contacts were not enrolled, for any reason: the length of skipped."
    )
    skipped: list[SkippedContact] = strawberry.field(
        description=(
            "Every contact that was not enrolled, with its reason: already enrolled, repeated in"
            " the request, no address for a channel, a variable the steps need, suppressed,"
            " open in another instance under SKIP."
        )
    )
    moved: list[MovedContact] = strawberry.field(
        default_factory=list,
        description=(
            "Under MOVE: one entry per enrollment in another instance that was removed so that"
            " its contact is enrolled here."
        ),
    )
    moved_count: int = strawberry.field(
        default=0, description="How many other enrollments MOVE removed: the length of moved."
    )
    errors: list[UserError]
    enrollment_ids: strawberry.Private[list[str]]

    @strawberry.field(description="The enrollments created by this request.")
    async def enrollments(self, info: Info) -> list[Enrollment]:
        """Loaded only when asked for: a 10,000-contact call rarely wants them back."""
        return await info.context.loaders.enrollment_by_id.load_many(self.enrollment_ids)  # type: ignore[no-any-return]


@strawberry.type
class ClassifyReplyPayload:
    event: CampaignEvent | None = strawberry.field(description="The reply, as classified.")
    enrollment: Enrollment | None = strawberry.field(
        description="Its enrollment, after the classification's effects."
    )
    errors: list[UserError]


@strawberry.type
class RecordEventPayload:
    event: CampaignEvent | None
    duplicate: bool = strawberry.field(
        description=(
            "True when an event with the same provider and providerEventId was already stored;"
            " nothing changed."
        )
    )
    errors: list[UserError]


@strawberry.type
class DispatchPayload:
    dispatch: Dispatch | None
    errors: list[UserError]


@strawberry.type
class SuppressionPayload:
    suppression: Suppression | None
    errors: list[UserError]


@strawberry.type
class RemoveSuppressionPayload:
    removed: bool = strawberry.field(description="False when the address was not suppressed.")
    errors: list[UserError]


@strawberry.type
class EraseContactPayload:
    erasure: ContactErasure | None = strawberry.field(
        description="This erasure, or the earlier one when the contact was already erased."
    )
    already_erased: bool = strawberry.field(
        description="True when nothing was left to erase: this request changed nothing."
    )
    errors: list[UserError]
