"""Relay's Node: every object with an id can be fetched again by that id alone."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLAbstractType, GraphQLResolveInfo


@strawberry.interface(
    description=(
        "An object the API can fetch again by its id alone (node, nodes). Ids are the"
        " objects' UUIDs, unique across types."
    )
)
class Node:
    id: strawberry.ID

    @classmethod
    def resolve_type(
        cls, obj: Any, info: GraphQLResolveInfo, abstract_type: GraphQLAbstractType
    ) -> str:
        """node and nodes return each row tagged with its type (resolvers.nodes.Found): rows
        carry no type of their own, and the lookup that found them already knows it."""
        return str(obj.type_name)
