"""Subscriptions are served over WebSocket only: over HTTP, a clear error instead of the null
graphql-core would make of a subscription field executed as a query."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

MESSAGE = (
    "subscriptions are served over WebSocket at /graphql (the graphql-transport-ws protocol);"
    " see the README's Live updates section"
)


class SubscriptionsOverWebSocket(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if (
            context.result is None
            and context.graphql_document is not None
            and context.operation_type is OperationType.SUBSCRIPTION
            and getattr(context.context, "live", None) is None
        ):
            context.result = ExecutionResult(
                data=None,
                errors=[GraphQLError(MESSAGE, extensions={"code": "INVALID_REQUEST"})],
            )
        yield
