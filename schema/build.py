"""Assemble the executable schema: root types bound to resolvers."""

from __future__ import annotations

import strawberry

from schema.permissions import CanRead


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[CanRead], description="The service's version.")
    def version(self) -> str:
        from importlib.metadata import version

        return version("campaign-api")


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query)
