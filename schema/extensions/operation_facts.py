"""Tell the access log which GraphQL operation a request ran (its name and type)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from app.observability.request_context import GraphQLOperation

ANONYMOUS = "anonymous"


class OperationFacts(SchemaExtension):
    """Leaves a ``GraphQLOperation`` in the request's ``scope["state"]`` once the document is
    parsed; wraps the operation only, never a field's resolver."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        operation = self._operation()
        if operation is not None and context is not None:
            context.request_state["graphql_operation"] = operation

    def _operation(self) -> GraphQLOperation | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        wanted = self.execution_context.operation_name
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            name = definition.name.value if definition.name else None
            if wanted is None or name == wanted:
                return GraphQLOperation(name or ANONYMOUS, definition.operation.value)
        return None
