"""Variables whose text is not valid Unicode are refused before execution, naming where.

JSON's ``"\\ud800"`` parses into a lone surrogate, which neither UTF-8 nor PostgreSQL can
hold: reaching a query it was an internal error. The document cannot carry one (graphql-core's
lexer refuses it in literals), so the variables are the one way in, for every String, ID and
JSON input alike: one check here instead of one per field.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult
from strawberry.extensions import SchemaExtension

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError
from app.services.validation import describe_path, unencodable, unencodable_message
from resolvers.errors import to_graphql_error


class RefuseUnencodableVariables(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        found = unencodable(context.variables) if context.variables else None
        if found is not None and context.result is None:
            path, text = found
            error = DomainError(
                ErrorCode.INVALID,
                f"variable ${describe_path(path)} {unencodable_message(text)}",
                [describe_path((part,)) if isinstance(part, str) else str(part) for part in path],
            )
            context.result = ExecutionResult(data=None, errors=[to_graphql_error(error)])
        yield
