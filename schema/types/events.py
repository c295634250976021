"""Events as providers reported them; orphans have no enrollment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from schema.types.enums import Channel, EventType, Provider, ReplySentiment
from schema.types.node import Node

if TYPE_CHECKING:
    from schema.types.enrollments import Enrollment
    from schema.types.instances import CampaignInstance

InstanceNode = Annotated["CampaignInstance", strawberry.lazy("schema.types.instances")]
EnrollmentNode = Annotated["Enrollment", strawberry.lazy("schema.types.enrollments")]


@strawberry.type
class CampaignEvent(Node):
    event_type: EventType
    channel: Channel
    provider: Provider
    provider_event_id: str | None
    step_number: int | None
    occurred_at: datetime
    metadata: JSON
    sentiment: ReplySentiment | None = strawberry.field(
        description=(
            "A reply's sentiment: its latest classification (null for other events, and for a"
            " reply nobody classified)."
        )
    )
    sentiment_by: str | None = strawberry.field(
        description="Who classified it: the API key's name, or the provider (lemlist)."
    )
    sentiment_at: datetime | None = strawberry.field(description="When it was classified.")
    return_date: datetime | None = strawberry.field(
        description="For an out-of-office reply: when its contact is back (the next touch)."
    )

    @strawberry.field(description="Null for an orphan.")
    async def enrollment(self, info: Info) -> EnrollmentNode | None:
        if self.enrollment_id is None:  # type: ignore[attr-defined]
            return None
        return await info.context.loaders.enrollment_by_id.load(self.enrollment_id)  # type: ignore[attr-defined]

    @strawberry.field
    async def instance(self, info: Info) -> InstanceNode | None:
        if self.instance_id is None:  # type: ignore[attr-defined]
            return None
        return await info.context.loaders.instance_by_id.load(self.instance_id)  # type: ignore[attr-defined]
