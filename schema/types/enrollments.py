"""Enrollments: one contact in one instance, with its events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import relations
from schema.pagination import Connection
from schema.types.enums import EnrollmentStatus, EventType, ReplySentiment
from schema.types.node import Node

if TYPE_CHECKING:
    from schema.types.events import CampaignEvent
    from schema.types.instances import CampaignInstance
    from schema.types.sending import Dispatch

InstanceNode = Annotated["CampaignInstance", strawberry.lazy("schema.types.instances")]
EventNode = Annotated["CampaignEvent", strawberry.lazy("schema.types.events")]
DispatchNode = Annotated["Dispatch", strawberry.lazy("schema.types.sending")]


@strawberry.type
class Enrollment(Node):
    contact_id: strawberry.ID
    status: EnrollmentStatus
    current_step: int
    next_action_at: datetime | None
    metadata: JSON
    enrolled_at: datetime
    completed_at: datetime | None
    unsubscribed_at: datetime | None
    removal_reason: str | None = strawberry.field(
        description="Why a REMOVED enrollment was removed, when known (a cross-campaign MOVE)."
    )
    moved_to_instance_id: strawberry.ID | None = strawberry.field(
        description="The instance a cross-campaign MOVE enrolled the contact in instead."
    )
    sentiment: ReplySentiment | None = strawberry.field(
        description="The sentiment of its latest reply; null before any classified reply."
    )

    @strawberry.field
    async def instance(self, info: Info) -> InstanceNode:
        return await info.context.loaders.instance_by_id.load(self.instance_id)  # type: ignore[attr-defined]

    @strawberry.field(description="Newest first.")
    async def events(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        event_type: EventType | None = None,
    ) -> Connection[EventNode]:
        result = await relations.child_page(
            info.context, "events_by_enrollment_id", self.id, first, after, event_type=event_type
        )
        return Connection(result=result)

    @strawberry.field(description="Its touches' dispatches, by step and channel.")
    async def dispatches(self, info: Info) -> list[DispatchNode]:
        return await relations.dispatches(info.context, self.id)  # type: ignore[no-any-return]
