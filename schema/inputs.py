"""Mutation inputs. UNSET (an absent field) differs from null in partial updates."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from schema.types.enums import (
    CampaignType,
    Channel,
    EventType,
    LinkedInAction,
    PathType,
    Provider,
    SuppressionReason,
)


@strawberry.input
class CreateTemplateInput:
    name: str
    type: CampaignType
    description: str | None = strawberry.UNSET
    path_type: PathType | None = PathType.STRUCTURED  # type: ignore[attr-defined]
    icp_profile_id: strawberry.ID | None = strawberry.UNSET
    settings: JSON | None = strawberry.UNSET


@strawberry.input
class UpdateTemplateInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    path_type: PathType | None = strawberry.UNSET
    icp_profile_id: strawberry.ID | None = strawberry.UNSET
    settings: JSON | None = strawberry.UNSET


@strawberry.input
class EmailStepInput:
    step_number: int
    body: str
    subject: str | None = strawberry.UNSET
    delay_hours: int | None = 0
    ab_variant: str | None = strawberry.UNSET


@strawberry.input
class UpdateEmailStepInput:
    step_number: int | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    delay_hours: int | None = strawberry.UNSET
    ab_variant: str | None = strawberry.UNSET


@strawberry.input(name="LinkedInStepInput")
class LinkedInStepInput:
    step_number: int
    action: LinkedInAction
    message: str | None = strawberry.UNSET
    delay_hours: int | None = 0


@strawberry.input(name="UpdateLinkedInStepInput")
class UpdateLinkedInStepInput:
    step_number: int | None = strawberry.UNSET
    action: LinkedInAction | None = strawberry.UNSET
    message: str | None = strawberry.UNSET
    delay_hours: int | None = strawberry.UNSET


@strawberry.input
class CreateInstanceInput:
    template_id: strawberry.ID
    name: str
    provider_config: JSON | None = strawberry.UNSET


@strawberry.input
class EnrollContactInput:
    contact_id: strawberry.ID
    metadata: JSON | None = strawberry.UNSET


@strawberry.input
class RecordEventInput:
    enrollment_id: strawberry.ID
    event_type: EventType
    channel: Channel | None = strawberry.field(
        default=Channel.EMAIL,  # type: ignore[attr-defined]
        description="For a LinkedIn-only event type the default is taken as LINKEDIN.",
    )
    provider: Provider | None = Provider.API  # type: ignore[attr-defined]
    provider_event_id: str | None = strawberry.UNSET
    step_number: int | None = strawberry.UNSET
    occurred_at: datetime | None = strawberry.UNSET
    metadata: JSON | None = strawberry.UNSET


@strawberry.input
class AddSuppressionInput:
    address: str = strawberry.field(
        description="An e-mail address, or a LinkedIn profile URL when channel is LINKEDIN."
    )
    channel: Channel = Channel.EMAIL  # type: ignore[attr-defined]
    reason: SuppressionReason = SuppressionReason.MANUAL  # type: ignore[attr-defined]
