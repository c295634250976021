"""Turning domain errors into what GraphQL clients see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from graphql import GraphQLError

from app.domain.errors import DomainError


def to_graphql_error(error: DomainError) -> GraphQLError:
    return GraphQLError(
        error.message, extensions={"code": error.code.value, "field": list(error.field)}
    )


@contextmanager
def bad_arguments_as_graphql_errors() -> Iterator[None]:
    """For queries: a malformed id or cursor is a clear GraphQL error, never a 500."""
    try:
        yield
    except DomainError as error:
        raise to_graphql_error(error) from None
