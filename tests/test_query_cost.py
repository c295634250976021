"""The node cost of an operation, on the real schema, without a server.

Each expected figure is written as the rule's arithmetic on the document's ``first`` values
and list bounds: a connection costs its page size times the bounds of the lists around it, a
``totalCount`` costs COUNT_COST for each list it counts.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema, get_named_type, parse

from app.domain.enums import Channel
from app.domain.keyset import DEFAULT_PAGE_SIZE
from app.domain.limits import BULK_ENROLL_MAX, STEP_NUMBER_MAX
from schema import build_schema
from schema.build import graphql_core_schema
from schema.extensions.cost import (
    COUNT_COST,
    LIST_BOUNDS,
    PAGE_FIELDS,
    is_connection,
    is_connection_type,
    is_object_list,
    operation_cost,
)


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
    assert cost(graphql_schema, "{ templates { pageInfo { hasNextPage } } }") == default
    assert cost(graphql_schema, "{ templates(first: null) { nodes { id } } }") == default
    nested = "{ instances(first: 3) { nodes { events { nodes { id } } } } }"
    assert cost(graphql_schema, nested) == 3 + 3 * default


def test_siblings_and_aliases_add_up(graphql_schema: GraphQLSchema) -> None:
    document = """{ a: templates(first: 7) { nodes { id } } b: templates(first: 8) { nodes { id } }
        orphanedEvents(first: 9) { nodes { instance { events(first: 2) { nodes { id } } } } } }"""
    assert cost(graphql_schema, document) == 7 + 8 + 9 + 9 * 2


def test_first_from_variables_and_their_defaults(graphql_schema: GraphQLSchema) -> None:
    document = """query Q($outer: Int, $inner: Int = 4, $unset: Int) {
        templates(first: $outer) { nodes { instances(first: $inner) { nodes {
          events(first: $unset) { nodes { id } } } } } } }"""
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
      fragment Events on CampaignInstance { events(first: 3) { pageInfo { endCursor } } }
      fragment Instances on CampaignTemplate {
        instances(first: 2) { nodes { ...Events ... on CampaignInstance { ...Events } } } }
      { templates(first: 5) { nodes { ...Instances } } instance(id: "x") { ...Events } }"""
    per_template = 2 + 2 * (3 + 3)
    assert cost(graphql_schema, document) == 5 + 5 * per_template + 3


def test_the_named_operation_is_the_one_measured(graphql_schema: GraphQLSchema) -> None:
    document = """query Small { templates(first: 1) { nodes { id } } }
                  query Large { templates(first: 90) { nodes { id } } }"""
    assert cost(graphql_schema, document, operation="Small") == 1
    assert cost(graphql_schema, document, operation="Large") == 90
    assert cost(graphql_schema, document, operation="Missing") == 0


def test_mutations_cost_their_returned_connections(graphql_schema: GraphQLSchema) -> None:
    document = """mutation { startInstance(id: "x") { instance {
        enrollments(first: 30) { nodes { id } } } } }"""
    assert cost(graphql_schema, document) == 30


def test_a_wrongly_typed_variable_counts_the_default(graphql_schema: GraphQLSchema) -> None:
    """Execution refuses such a variable; the cost must not crash on it first."""
    document = "query Q($n: Int) { templates(first: $n) { nodes { id } } }"
    for value in ("12", True, [3], {"a": 1}):
        assert cost(graphql_schema, document, {"n": value}) == DEFAULT_PAGE_SIZE
    assert cost(graphql_schema, document, {"n": 12.0}) == 12
    assert cost(graphql_schema, document, {"n": -5}) == 0


def test_a_total_count_costs_a_page_for_each_list_it_counts(
    graphql_schema: GraphQLSchema,
) -> None:
    """A count reads the whole filtered list: 28 aliased counts are not free."""
    assert cost(graphql_schema, "{ templates(first: 3) { totalCount } }") == 3 + COUNT_COST
    nested = "{ templates(first: 5) { nodes { instances(first: 2) { totalCount } } } }"
    assert cost(graphql_schema, nested) == 5 + 5 * (2 + COUNT_COST)
    aliased = " ".join(f"c{n}: orphanedEvents(first: 1) {{ totalCount }}" for n in range(28))
    assert cost(graphql_schema, "{ " + aliased + " }") == 28 * (1 + COUNT_COST)


BULK_AMPLIFIED = """mutation($id: ID!, $contacts: [EnrollContactInput!]!) {
  bulkEnroll(instanceId: $id, contacts: $contacts) { enrollments { instance {
    enrollments(first: 100) { nodes { instance { enrollments(first: 100) { nodes { id } } } } }
  } } } }"""


def contacts(count: int) -> list[dict[str, Any]]:
    return [{"contactId": f"c{n}"} for n in range(count)]


def test_bulk_enroll_lists_multiply_by_the_contacts_given(graphql_schema: GraphQLSchema) -> None:
    """The issue's payload: 20 contacts, each enrollment's instance re-read 100 x 100 times."""
    per_enrollment = 100 + 100 * 100
    for count in (0, 1, 20):
        variables = {"id": "x", "contacts": contacts(count)}
        assert cost(graphql_schema, BULK_AMPLIFIED, variables) == count * per_enrollment
    literal = """mutation { bulkEnroll(instanceId: "x", contacts: [{contactId: "a"},
        {contactId: "b"}, {contactId: "c"}]) { enrollments { events(first: 7) { nodes { id } } }
        skipped { index } errors { code } } }"""
    assert cost(graphql_schema, literal) == 3 * 7
    single = """mutation { bulkEnroll(instanceId: "x", contacts: {contactId: "a"}) {
        enrollments { events(first: 7) { nodes { id } } } } }"""
    assert cost(graphql_schema, single) == 1 * 7  # GraphQL makes one value a list of one


def test_an_unknown_or_oversized_contact_list_counts_the_maximum(
    graphql_schema: GraphQLSchema,
) -> None:
    """Without its variable the list is bounded by the most bulkEnroll accepts; a longer
    list is refused by bulkEnroll, which then returns no enrollments beyond that."""
    per_enrollment = 100 + 100 * 100
    assert cost(graphql_schema, BULK_AMPLIFIED, {"id": "x"}) == BULK_ENROLL_MAX * per_enrollment
    over = {"id": "x", "contacts": contacts(BULK_ENROLL_MAX + 5)}
    assert cost(graphql_schema, BULK_AMPLIFIED, over) == BULK_ENROLL_MAX * per_enrollment


def test_a_fragment_under_two_payloads_counts_each_payload_contacts(
    graphql_schema: GraphQLSchema,
) -> None:
    document = """mutation($a: [EnrollContactInput!]!, $b: [EnrollContactInput!]!) {
        x: bulkEnroll(instanceId: "i", contacts: $a) { ...Created }
        y: bulkEnroll(instanceId: "i", contacts: $b) { ...Created } }
      fragment Created on BulkEnrollPayload { enrollments { events(first: 2) { totalCount } } }"""
    variables = {"a": contacts(3), "b": contacts(11)}
    assert cost(graphql_schema, document, variables) == (3 + 11) * (2 + COUNT_COST)


def test_dispatches_multiply_by_the_most_touches_an_enrollment_has(
    graphql_schema: GraphQLSchema,
) -> None:
    touches = len(Channel) * STEP_NUMBER_MAX
    document = """{ instance(id: "x") { enrollments(first: 10) { nodes {
        dispatches { status enrollment { events(first: 5) { nodes { id } } } } } } } }"""
    assert cost(graphql_schema, document) == 10 + 10 * touches * 5
    plain = '{ instance(id: "x") { enrollments(first: 10) { nodes { dispatches { status } } } } }'
    assert cost(graphql_schema, plain) == 10


def _reaches_a_cost(schema: GraphQLSchema, start: GraphQLObjectType) -> bool:
    """Whether anything under objects of ``start`` can cost: a connection or a count."""
    seen, stack = {start.name}, [start]
    while stack:
        named = stack.pop()
        if is_connection_type(named):
            return True
        for field in named.fields.values():
            if is_connection(field):
                return True
            inner = get_named_type(field.type)
            if isinstance(inner, GraphQLObjectType) and inner.name not in seen:
                seen.add(inner.name)
                stack.append(inner)
    return False


def test_every_list_that_can_lead_to_a_cost_has_a_bound(graphql_schema: GraphQLSchema) -> None:
    """A new list field whose items reach a connection must say how long it can be."""
    lists = {
        (type_name, field_name): get_named_type(field.type)
        for type_name, named in graphql_schema.type_map.items()
        if not type_name.startswith("__") and isinstance(named, GraphQLObjectType)
        for field_name, field in named.fields.items()
        if is_object_list(field.type)
        and not (is_connection_type(named) and field_name in PAGE_FIELDS)
    }
    costly = {key for key, item in lists.items() if _reaches_a_cost(graphql_schema, item)}
    assert costly == set(LIST_BOUNDS)
