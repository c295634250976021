"""A query's variables whose text is not valid Unicode are refused before it runs, naming
where.

JSON's ``"\\ud800"`` parses into a lone surrogate, which neither UTF-8 nor PostgreSQL can
hold: in ``filter.search`` it reached a query and came back as an internal error. A document
cannot carry one (graphql-core's lexer refuses it in literals), so variables are the one way
in. Queries have no payload errors, so this is their one check, for every String, ID and JSON
argument alike. Mutations are left to their own validation, which answers with payload errors
naming the input field (``Problems.text`` and the JSON checks refuse what is not storable).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError
from app.services.validation import describe_path, unencodable, unencodable_message
from resolvers.errors import to_graphql_error


class RefuseUnencodableVariables(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        query = context.operation_type is OperationType.QUERY
        found = unencodable(context.variables) if query and context.variables else None
        if found is not None and context.result is None:
            path, text = found
            error = DomainError(
                ErrorCode.INVALID,
                f"variable ${describe_path(path)} {unencodable_message(text)}",
                [describe_path((part,)) if isinstance(part, str) else str(part) for part in path],
            )
            context.result = ExecutionResult(data=None, errors=[to_graphql_error(error)])
        yield
