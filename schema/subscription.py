"""The root Subscription, served over WebSocket (graphql-transport-ws) at /graphql: every
field needs the 'read' scope."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from resolvers import subscriptions
from schema.permissions import CanRead
from schema.types.instances import CampaignInstance
from schema.types.live import InstanceActivity


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description=(
            "New activity of the instance; with `after`, first everything stored after that"
            " item. `after` is an item's `cursor`, or the id of one of the instance's events"
            " (resume right after that event)."
        ),
    )
    async def instance_activity(
        self, info: Info, instance_id: strawberry.ID, after: strawberry.ID | None = None
    ) -> AsyncGenerator[InstanceActivity, None]:
        async for item in subscriptions.instance_activity(info.context, instance_id, after):
            yield item  # type: ignore[misc]

    @strawberry.subscription(
        permission_classes=[CanRead],
        description="The instance now and on every status change (and counters change).",
    )
    async def instance_status(
        self, info: Info, instance_id: strawberry.ID
    ) -> AsyncGenerator[CampaignInstance, None]:
        async for instance in subscriptions.instance_status(info.context, instance_id):
            yield instance
