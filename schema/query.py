"""The root Query: every field needs the 'read' scope."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers import nodes as node_resolvers
from resolvers import queries
from schema.pagination import Connection
from schema.permissions import CanAdmin, CanRead
from schema.types.enrollments import Enrollment
from schema.types.enums import CampaignType, Channel, InstanceStatus, PathType
from schema.types.events import CampaignEvent
from schema.types.instances import CampaignInstance
from schema.types.node import Node
from schema.types.sending import Suppression
from schema.types.templates import CampaignTemplate


@strawberry.input
class TemplateFilter:
    type: CampaignType | None = None
    path_type: PathType | None = None
    is_active: bool | None = strawberry.field(
        default=True, description="Archived templates are left out unless this is false or null."
    )
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the name."
    )


@strawberry.input
class InstanceFilter:
    status: InstanceStatus | None = None
    template_id: strawberry.ID | None = None


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[CanRead],
        description=(
            "The object with this id, of whatever type; null when none has it. A type that"
            " needs another scope (Suppression: admin) still needs it here."
        ),
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await node_resolvers.node(info.context, id)  # type: ignore[return-value]

    @strawberry.field(
        permission_classes=[CanRead],
        description=(
            "The objects with these ids (at most 100), in the same order; null where none has"
            " the id. A malformed id, or one of a type the key may not read, is an error at"
            " its position only."
        ),
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return await node_resolvers.nodes(info.context, ids)  # type: ignore[return-value]

    @strawberry.field(permission_classes=[CanRead], description="Newest first.")
    async def templates(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: TemplateFilter | None = None,
    ) -> Connection[CampaignTemplate]:
        f = filter or TemplateFilter()
        result = await queries.templates(
            info.context,
            first,
            after,
            f.type.value if f.type else None,
            f.path_type.value if f.path_type else None,
            f.is_active,
            f.search,
        )
        return Connection(result=result)

    @strawberry.field(permission_classes=[CanRead])
    async def template(self, info: Info, id: strawberry.ID) -> CampaignTemplate | None:
        return await queries.by_id(info.context, "template_by_id", id)  # type: ignore[no-any-return]

    @strawberry.field(permission_classes=[CanRead], description="Newest first.")
    async def instances(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: InstanceFilter | None = None,
    ) -> Connection[CampaignInstance]:
        f = filter or InstanceFilter()
        result = await queries.instances(
            info.context, first, after, f.status.value if f.status else None, f.template_id
        )
        return Connection(result=result)

    @strawberry.field(permission_classes=[CanRead])
    async def instance(self, info: Info, id: strawberry.ID) -> CampaignInstance | None:
        return await queries.by_id(info.context, "instance_by_id", id)  # type: ignore[no-any-return]

    @strawberry.field(permission_classes=[CanRead])
    async def enrollment(self, info: Info, id: strawberry.ID) -> Enrollment | None:
        return await queries.by_id(info.context, "enrollment_by_id", id)  # type: ignore[no-any-return]

    @strawberry.field(
        permission_classes=[CanRead],
        description="Events whose enrollment could not be resolved, newest first.",
    )
    async def orphaned_events(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[CampaignEvent]:
        return Connection(result=await queries.orphaned_events(info.context, first, after))

    @strawberry.field(
        permission_classes=[CanAdmin],
        description="The suppression list, newest first (admin scope: it holds addresses).",
    )
    async def suppressions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        channel: Channel | None = None,
    ) -> Connection[Suppression]:
        result = await queries.suppressions(
            info.context, first, after, channel.value if channel else None
        )
        return Connection(result=result)
