"""Templates and their steps. Instances are rows from the loaders; fields read them directly."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import relations
from schema.pagination import Connection
from schema.types.enums import CampaignType, InstanceStatus, LinkedInAction, PathType
from schema.types.node import Node

if TYPE_CHECKING:
    from schema.types.instances import CampaignInstance

InstanceNode = Annotated["CampaignInstance", strawberry.lazy("schema.types.instances")]


@strawberry.type
class EmailStep(Node):
    step_number: int
    subject: str | None
    body: str
    delay_hours: int
    ab_variant: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


@strawberry.type(name="LinkedInStep")
class LinkedInStep(Node):
    step_number: int
    action: LinkedInAction
    message: str | None
    delay_hours: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


@strawberry.type
class CampaignTemplate(Node):
    name: str
    description: str | None
    type: CampaignType
    path_type: PathType
    icp_profile_id: strawberry.ID | None
    settings: JSON
    created_by: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description="Active steps, ordered by stepNumber (all steps with includeInactive)."
    )
    async def email_steps(
        self, info: Info, include_inactive: bool | None = False
    ) -> list[EmailStep]:
        return await relations.steps(info.context, "email", self.id, bool(include_inactive))

    @strawberry.field(name="linkedinSteps")
    async def linkedin_steps(
        self, info: Info, include_inactive: bool | None = False
    ) -> list[LinkedInStep]:
        return await relations.steps(info.context, "linkedin", self.id, bool(include_inactive))

    @strawberry.field
    async def instances(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: InstanceStatus | None = None,
    ) -> Connection[InstanceNode]:
        result = await relations.child_page(
            info.context, "instances_by_template_id", self.id, first, after, status=status
        )
        return Connection(result=result)
