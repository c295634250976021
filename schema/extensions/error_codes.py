"""Every GraphQL error carries ``extensions.code``, and no schema hints when introspection is off.

The service's own errors are coded where they are raised (FORBIDDEN, QUERY_TOO_COMPLEX,
INVALID…), and so is what ends a request before its operation starts (a syntax error, an
operation that is not named). The rest come from graphql-core, uncoded: they are coded here by
the stage that produced them, once the response is complete, with Apollo Server's names:

- ``GRAPHQL_PARSE_FAILED``: the document is not GraphQL (a syntax error);
- ``GRAPHQL_VALIDATION_FAILED``: it does not fit the schema (an unknown field or argument, a
  wrong literal); ``INTROSPECTION_DISABLED`` when it asks for ``__schema`` or ``__type`` where
  introspection is off;
- ``BAD_USER_INPUT``: the request's variables do not fit it (missing, or of the wrong type);
- ``OPERATION_RESOLUTION_FAILURE``: which operation to run is not said (several, no name);
- ``INTERNAL_SERVER_ERROR``: anything else a field raised (masking already codes those).

graphql-core suggests close names ("Did you mean 'templates'?"), which lists the schema to
whoever guesses; where introspection is off, the suggestions go with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
BAD_USER_INPUT = "BAD_USER_INPUT"
OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

_NAME = r"'[_A-Za-z][_0-9A-Za-z]*'"
SUGGESTION = re.compile(rf" Did you mean (?:the enum value )?{_NAME}(?:,? (?:or )?{_NAME})*\?")
"""graphql-core's ``did_you_mean``: " Did you mean 'a', 'b', or 'c'?" after a sentence."""


def _code(error: GraphQLError) -> Any:
    return (error.extensions or {}).get("code")


def coded(error: GraphQLError, code: str | None, hide_suggestions: bool = False) -> GraphQLError:
    """``error`` with ``code`` added (when it had none) and without suggestions if asked."""
    message = SUGGESTION.sub("", error.message) if hide_suggestions else error.message
    extensions = dict(error.extensions or {})
    if code is not None and "code" not in extensions:
        extensions["code"] = code
    if message == error.message and extensions == (error.extensions or {}):
        return error
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        extensions,
    )


class IntrospectionDisabled(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule refusing ``__schema`` and ``__type``, its errors coded."""

    def report_error(self, error: GraphQLError) -> None:
        super().report_error(coded(error, INTROSPECTION_DISABLED))


class ErrorCodes(SchemaExtension):
    """Codes the uncoded errors of a response; the outermost extension, so it sees them all."""

    def __init__(self, hide_suggestions: bool) -> None:
        self.hide_suggestions = hide_suggestions
        self._validation_errors: set[int] = set()
        self._requested_operation: str | None = None

    def on_parse(self) -> Iterator[None]:
        # Before the document exists, the context's operation name is only what the client
        # sent: once parsed, Strawberry falls back to the first operation's name.
        self._requested_operation = self.execution_context.operation_name
        yield
        document = self.execution_context.graphql_document
        if document is None or self._requested_operation is not None:
            return
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if operations > 1:
            raise GraphQLError(
                f"the document has {operations} operations: name the one to run in 'operationName'",
                extensions={"code": OPERATION_RESOLUTION_FAILURE},
            )

    def on_validate(self) -> Iterator[None]:
        yield
        errors = self.execution_context.pre_execution_errors or ()
        self._validation_errors = {id(error) for error in errors}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [
            coded(error, self._stage(error), self.hide_suggestions) for error in result.errors
        ]

    def _stage(self, error: GraphQLError) -> str | None:
        if _code(error) is not None:
            return None
        if id(error) in self._validation_errors:
            return VALIDATION_FAILED
        return INTERNAL_SERVER_ERROR if error.path else BAD_USER_INPUT
