"""Assemble the executable schema: root types bound to resolvers, with the abuse limits."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError, GraphQLObjectType, GraphQLSchema
from strawberry.extensions import AddValidationRules, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext

from app.settings import Settings
from resolvers.shared_events import FastSharedExecutor, SharedEventsExecutor
from schema.extensions.database_outage import ReportDatabaseOutage
from schema.extensions.error_codes import ErrorCodes, IntrospectionDisabled
from schema.extensions.limits import (
    QueryCostLimit,
    RequestContactLimit,
    TokenLimitedParserCache,
    alias_rule,
    depth_rule,
)
from schema.extensions.masking import MaskUnexpectedErrors
from schema.extensions.operation_facts import OperationFacts
from schema.extensions.payload_reads import PayloadReadScope
from schema.extensions.transport import SubscriptionsOverWebSocket
from schema.extensions.unicode_variables import RefuseUnencodableVariables
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription

CACHE_SIZE = 256
"""Distinct documents kept parsed and validated; bounded so unique queries cannot grow memory."""


def _extensions(
    settings: Settings, executable: Callable[[], GraphQLSchema]
) -> list[Callable[[], SchemaExtension]]:
    """Factories, so each request gets fresh extension instances around shared caches.

    ``executable`` gives the graphql-core schema the cost limit measures against: it exists
    only once the Strawberry schema these extensions are given to is built. Introspection and
    graphql-core's name suggestions ("Did you mean …?") are off together."""
    introspection = settings.introspection_enabled
    # The rule classes are made once: they are part of the validation cache's key.
    rules = [depth_rule(settings.max_query_depth), alias_rule(settings.max_aliases)]
    if not introspection:
        rules.insert(0, IntrospectionDisabled)
    return [
        # Outermost: it codes the errors every other stage left (masked ones included).
        lambda: ErrorCodes(hide_suggestions=not introspection),
        lambda: TokenLimitedParserCache(settings.max_tokens, maxsize=CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        RefuseUnencodableVariables,
        lambda: PayloadReadScope(executable()),
        RequestContactLimit,
        lambda: QueryCostLimit(settings.max_query_cost, executable()),
        SubscriptionsOverWebSocket,
        MaskUnexpectedErrors,
        # Inside the masking: an outage is seen (and made a 503) before errors are masked.
        OperationFacts,
        ReportDatabaseOutage,
    ]


class _Schema(strawberry.Schema):
    """Strawberry's schema without its own error log.

    Strawberry logs every error of every response with a traceback. Errors the service raises
    on purpose (a bad cursor, a missing scope, an invalid document) are answers, not failures.
    Unexpected ones are logged once by MaskUnexpectedErrors, with the request id. So nothing
    is left to log here, and without this each failure was logged twice.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    settings: Settings | None = None, fast_execution: bool = False
) -> strawberry.Schema:
    """The schema; ``fast_execution`` runs queries through compiled plans (fast_execution/).

    Without settings (``export-schema``, which must work in any environment) the limits are
    the defaults, read from no environment; limits never change the SDL."""
    schema = _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=_extensions(settings or Settings.model_construct(), lambda: executable),
        execution_context_class=FastSharedExecutor if fast_execution else SharedEventsExecutor,
    )
    executable = graphql_core_schema(schema)
    _trust_resolved_types(executable)
    return schema


def _trust_resolved_types(executable: GraphQLSchema) -> None:
    """Drop the ``is_type_of`` Strawberry gives every type that implements an interface.

    It checks that each value is an instance of the Strawberry class; our resolvers return
    database rows, so it would refuse every row of every type that implements Node, on every
    path. Which type a Node is, ``Node.resolve_type`` says; a field of a concrete type is
    typed by its declaration. graphql-core then skips the check (and the fast path, which
    declines types that have one, keeps these types)."""
    for named in executable.type_map.values():
        if isinstance(named, GraphQLObjectType) and named.interfaces:
            named.is_type_of = None


def graphql_core_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built and executes on.

    Strawberry 0.341 has no public accessor for it; this is the one place that reads its
    ``_schema`` (pinned in pyproject.toml, checked by tests/test_private_apis.py)."""
    executable: GraphQLSchema = schema._schema
    return executable
