"""The node cost of an operation, on the real schema, without a server.

Each expected figure is written as the rule's arithmetic on the document's ``first`` values:
a connection costs its page size times the page sizes of the connections around it.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema, parse

from app.domain.keyset import DEFAULT_PAGE_SIZE
from schema import build_schema
from schema.build import graphql_core_schema
from schema.extensions.cost import is_connection, operation_cost


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return graphql_core_schema(build_schema())


def cost(
    schema: GraphQLSchema,
    document: str,
    variables: dict[str, Any] | None = None,
    operation: str | None = None,
) -> int:
    return operation_cost(schema, parse(document), operation, variables)


def test_connections_are_the_paged_fields(graphql_schema: GraphQLSchema) -> None:
    """Every field with a ``first`` argument is a connection; lists of steps are not."""
    found = {
        f"{type_name}.{field_name}"
        for type_name, named in graphql_schema.type_map.items()
        if not type_name.startswith("__") and isinstance(named, GraphQLObjectType)
        for field_name, field in named.fields.items()
        if is_connection(field)
    }
    assert found == {
        "Query.templates",
        "Query.instances",
        "Query.orphanedEvents",
        "Query.suppressions",
        "CampaignTemplate.instances",
        "CampaignInstance.enrollments",
        "CampaignInstance.events",
        "Enrollment.events",
    }


def test_nested_connections_multiply(graphql_schema: GraphQLSchema) -> None:
    document = """{ templates(first: 10) { nodes { emailSteps { id }
        instances(first: 5) { edges { node { enrollments(first: 10) { nodes {
          events(first: 5) { nodes { id } } } } } } } } } }"""
    assert cost(graphql_schema, document) == 10 + 10 * 5 + 10 * 5 * 10 + 10 * 5 * 10 * 5


def test_an_absent_or_null_first_counts_the_default(graphql_schema: GraphQLSchema) -> None:
    default = DEFAULT_PAGE_SIZE
    assert cost(graphql_schema, "{ templates { totalCount } }") == default
    assert cost(graphql_schema, "{ templates(first: null) { totalCount } }") == default
    nested = "{ instances(first: 3) { nodes { events { nodes { id } } } } }"
    assert cost(graphql_schema, nested) == 3 + 3 * default


def test_siblings_and_aliases_add_up(graphql_schema: GraphQLSchema) -> None:
    document = """{ a: templates(first: 7) { totalCount } b: templates(first: 8) { totalCount }
        orphanedEvents(first: 9) { nodes { instance { events(first: 2) { totalCount } } } } }"""
    assert cost(graphql_schema, document) == 7 + 8 + 9 + 9 * 2


def test_first_from_variables_and_their_defaults(graphql_schema: GraphQLSchema) -> None:
    document = """query Q($outer: Int, $inner: Int = 4, $unset: Int) {
        templates(first: $outer) { nodes { instances(first: $inner) { nodes {
          events(first: $unset) { totalCount } } } } } }"""
    default = DEFAULT_PAGE_SIZE
    assert cost(graphql_schema, document, {"outer": 6}) == 6 + 6 * 4 + 6 * 4 * default
    assert cost(graphql_schema, document, {"outer": 6, "inner": 2, "unset": 3}) == (
        6 + 6 * 2 + 6 * 2 * 3
    )
    assert cost(graphql_schema, document, {"outer": None, "inner": 1}) == (
        default + default * 1 + default * 1 * default
    )


def test_fragments_count_wherever_they_are_spread(graphql_schema: GraphQLSchema) -> None:
    document = """
      fragment Events on CampaignInstance { events(first: 3) { totalCount } }
      fragment Instances on CampaignTemplate {
        instances(first: 2) { nodes { ...Events ... on CampaignInstance { ...Events } } } }
      { templates(first: 5) { nodes { ...Instances } } instance(id: "x") { ...Events } }"""
    per_template = 2 + 2 * (3 + 3)
    assert cost(graphql_schema, document) == 5 + 5 * per_template + 3


def test_the_named_operation_is_the_one_measured(graphql_schema: GraphQLSchema) -> None:
    document = """query Small { templates(first: 1) { totalCount } }
                  query Large { templates(first: 90) { totalCount } }"""
    assert cost(graphql_schema, document, operation="Small") == 1
    assert cost(graphql_schema, document, operation="Large") == 90
    assert cost(graphql_schema, document, operation="Missing") == 0


def test_mutations_cost_their_returned_connections(graphql_schema: GraphQLSchema) -> None:
    document = """mutation { startInstance(id: "x") { instance {
        enrollments(first: 30) { totalCount } } } }"""
    assert cost(graphql_schema, document) == 30


def test_a_wrongly_typed_variable_counts_the_default(graphql_schema: GraphQLSchema) -> None:
    """Execution refuses such a variable; the cost must not crash on it first."""
    document = "query Q($n: Int) { templates(first: $n) { totalCount } }"
    for value in ("12", True, [3], {"a": 1}):
        assert cost(graphql_schema, document, {"n": value}) == DEFAULT_PAGE_SIZE
    assert cost(graphql_schema, document, {"n": 12.0}) == 12
    assert cost(graphql_schema, document, {"n": -5}) == 0
