"""The node cost of a GraphQL operation, computed from its document before anything runs.

As in GitHub's node limit, every connection field may return ``first`` nodes (its default when
the argument is absent or null) for every node of the connections around it, so a connection
costs ``first`` times the ``first`` of each enclosing connection and the operation costs the
sum. ``first`` from a variable is read from the request's variables (or the variable's default).
Pure: the schema, the document and the variables in, a number out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_interface_type,
    is_object_type,
    value_from_ast_untyped,
)

from app.domain.keyset import DEFAULT_PAGE_SIZE

PAGE_SIZE_ARGUMENT = "first"


def is_connection(field: GraphQLField) -> bool:
    """A field paged by ``first`` that returns a connection (a type with ``pageInfo``)."""
    named = get_named_type(field.type)
    return (
        PAGE_SIZE_ARGUMENT in field.args
        and isinstance(named, GraphQLObjectType)
        and "pageInfo" in named.fields
    )


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The most nodes the selected operation could return; 0 when no operation is selected."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return _CostWalk(schema, fragments, _variable_values(operation, variables)).selections(
        operation.selection_set, root, frozenset()
    )


def _variable_values(
    operation: OperationDefinitionNode, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The request's variables, falling back to each variable's declared default."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if given is not None and name in given:
            values[name] = given[name]
        elif definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    return values


class _CostWalk:
    """One walk over an operation; a fragment's cost is computed once however often spread."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._fragment_costs: dict[str, int] = {}

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        visiting: frozenset[str],
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, visiting)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, visiting)
        return total

    def _field(
        self, node: FieldNode, parent: GraphQLNamedType | None, visiting: frozenset[str]
    ) -> int:
        if not (is_object_type(parent) or is_interface_type(parent)):
            return 0
        field = parent.fields.get(node.name.value)  # type: ignore[union-attr]
        if field is None:  # __typename, introspection, or unknown (validation reports it)
            return 0
        inner = self.selections(node.selection_set, get_named_type(field.type), visiting)
        if not is_connection(field):
            return inner
        size = self._page_size(node, field)
        return size + size * inner

    def _page_size(self, node: FieldNode, field: GraphQLField) -> int:
        default = field.args[PAGE_SIZE_ARGUMENT].default_value
        fallback = default if isinstance(default, int) else DEFAULT_PAGE_SIZE
        argument = next(
            (a for a in node.arguments or () if a.name.value == PAGE_SIZE_ARGUMENT), None
        )
        if argument is None:
            return fallback
        value: Any
        if isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            if name not in self._variables:  # an unset variable leaves the argument absent
                return fallback
            value = self._variables[name]
        elif isinstance(argument.value, NullValueNode):
            value = None
        else:  # a literal of the wrong type: validation refuses the document
            return fallback
        if value is None:
            return DEFAULT_PAGE_SIZE
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return fallback  # a variable of the wrong type: execution refuses it
        return max(value, 0)

    def _fragment(self, name: str, visiting: frozenset[str]) -> int:
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in visiting:  # unknown or cyclic: validation reports it
            return 0
        condition = self._schema.get_type(fragment.type_condition.name.value)
        cost = self.selections(fragment.selection_set, condition, visiting | {name})
        self._fragment_costs[name] = cost
        return cost
