"""Assemble the executable schema: root types bound to resolvers."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from resolvers.database_outage import ReportDatabaseOutage
from schema.mutation import Mutation
from schema.query import Query


def _unexpected(error: GraphQLError) -> bool:
    """Mask what the service did not raise on purpose: no SQL or internals reach a client."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _mask_errors() -> MaskErrors:
    return MaskErrors(should_mask_error=_unexpected, error_message="Internal server error")


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[_mask_errors, ReportDatabaseOutage],
    )
