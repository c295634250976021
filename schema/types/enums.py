"""The domain enums under the contract's GraphQL names (values are the member names)."""

from __future__ import annotations

import strawberry

from app.domain import enums

CampaignType = strawberry.enum(enums.TemplateType, name="CampaignType")
PathType = strawberry.enum(enums.PathType, name="PathType")
LinkedInAction = strawberry.enum(enums.LinkedInAction, name="LinkedInAction")
InstanceStatus = strawberry.enum(enums.InstanceStatus, name="InstanceStatus")
EnrollmentStatus = strawberry.enum(enums.EnrollmentStatus, name="EnrollmentStatus")
Channel = strawberry.enum(enums.Channel, name="Channel")
Provider = strawberry.enum(enums.Provider, name="Provider")
EventType = strawberry.enum(enums.EventType, name="EventType")
ErrorCode = strawberry.enum(enums.ErrorCode, name="ErrorCode")
DispatchStatus = strawberry.enum(enums.DispatchStatus, name="DispatchStatus")
SuppressionReason = strawberry.enum(enums.SuppressionReason, name="SuppressionReason")
SkipReason = strawberry.enum(enums.SkipReason, name="SkipReason")
CrossCampaignPolicy = strawberry.enum(
    enums.CrossCampaignPolicy,
    name="CrossCampaignPolicy",
    description=(
        "What enrolling does with a contact open (enrolled, active or paused) in another"
        " instance: ALLOW enrolls it, SKIP skips it (ACTIVE_ELSEWHERE), MOVE removes the other"
        " enrollments and enrolls it here."
    ),
)
ReplySentiment = strawberry.enum(
    enums.ReplySentiment,
    name="ReplySentiment",
    description=(
        "What a reply says: taken from the provider (lemlist's interested / not interested)"
        " or set by classifyReply."
    ),
)
