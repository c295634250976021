"""Assemble the executable schema: root types bound to resolvers."""

from __future__ import annotations

import strawberry

from schema.mutation import Mutation
from schema.query import Query


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)
