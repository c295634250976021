"""Assemble the executable schema: root types bound to resolvers."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from resolvers.database_outage import ReportDatabaseOutage
from resolvers.fast_execution import FastExecutor
from resolvers.operation_facts import OperationFacts
from schema.mutation import Mutation
from schema.query import Query


def _unexpected(error: GraphQLError) -> bool:
    """Mask what the service did not raise on purpose: no SQL or internals reach a client."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _mask_errors() -> MaskErrors:
    return MaskErrors(should_mask_error=_unexpected, error_message="Internal server error")


def build_schema(fast_execution: bool = False) -> strawberry.Schema:
    """The schema; ``fast_execution`` runs queries through compiled plans (fast_execution/)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[_mask_errors, OperationFacts, ReportDatabaseOutage],
        execution_context_class=FastExecutor if fast_execution else None,
    )
