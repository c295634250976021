"""The node cost of a GraphQL operation, computed from its document before anything runs.

As in GitHub's node limit, every connection field may return ``first`` nodes (its default when
the argument is absent or null) for every node of the lists around it, so a connection costs
``first`` times the bounds of each enclosing list and the operation costs the sum. A list that
is not a connection (``bulkEnroll``'s ``enrollments``, an enrollment's ``dispatches``) has a
bound too, and multiplies the cost of what is selected under it by that bound: the size of the
argument it answers (the contacts given to ``bulkEnroll``), else the most it can hold. A
``totalCount`` reads the whole filtered list, so it costs ``COUNT_COST`` for each list it counts.
``first`` and list arguments given as variables are read from the request's variables (or the
variable's default). Pure: the schema, the document and the variables in, a number out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_interface_type,
    is_object_type,
    value_from_ast_untyped,
)

from app.domain.enums import Channel
from app.domain.keyset import DEFAULT_PAGE_SIZE
from app.domain.limits import BULK_ENROLL_MAX, STEP_NUMBER_MAX

PAGE_SIZE_ARGUMENT = "first"
PAGE_FIELDS = frozenset({"nodes", "edges"})
"""A connection's lists of its page: bounded by the connection's ``first``."""
COUNT_FIELD = "totalCount"
COUNT_COST = DEFAULT_PAGE_SIZE
"""A count reads its whole list, which is seldom shorter than a page: it costs a default page."""


@dataclass(frozen=True, slots=True)
class ListBound:
    """The most items a list field returns: ``maximum``, or fewer when ``argument`` (a list
    argument of the field that returned the list's parent object) is shorter."""

    maximum: int
    argument: str | None = None


LIST_BOUNDS: Mapping[tuple[str, str], ListBound] = {
    ("BulkEnrollPayload", "enrollments"): ListBound(BULK_ENROLL_MAX, "contacts"),
    # One dispatch per touch: (channel, step number) is unique per enrollment.
    ("Enrollment", "dispatches"): ListBound(len(Channel) * STEP_NUMBER_MAX),
}
"""Bounds of the lists (connections' pages aside) whose items can lead to something costly;
tests/test_query_cost.py fails when a list that can is missing here."""
UNDECLARED_LIST_BOUND = BULK_ENROLL_MAX
"""What a list missing from LIST_BOUNDS is assumed to hold: the largest list the API returns."""
_BOUND_ARGUMENTS = frozenset(b.argument for b in LIST_BOUNDS.values() if b.argument)


def is_connection(field: GraphQLField) -> bool:
    """A field paged by ``first`` that returns a connection (a type with ``pageInfo``)."""
    return PAGE_SIZE_ARGUMENT in field.args and is_connection_type(get_named_type(field.type))


def is_connection_type(named: GraphQLNamedType | None) -> bool:
    return isinstance(named, GraphQLObjectType) and "pageInfo" in named.fields


def is_object_list(output: GraphQLOutputType) -> bool:
    """A list (of lists…) of objects: its items can have fields that cost."""
    inner = output.of_type if isinstance(output, GraphQLNonNull) else output
    return isinstance(inner, GraphQLList) and not _is_leaf(get_named_type(inner))


def _is_leaf(named: GraphQLNamedType) -> bool:
    return not (is_object_type(named) or is_interface_type(named))


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
    walk = _CostWalk(schema, fragments, variable_values(operation, variables))
    return walk.selections(operation.selection_set, root, _Scope(), frozenset())


def variable_values(
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


def list_length(value: ValueNode, variables: Mapping[str, Any]) -> int | None:
    """How many items a list argument carries; None when not known before execution.

    GraphQL coerces a single value given for a list to a list of one, and null to nothing."""
    if isinstance(value, VariableNode):
        if value.name.value not in variables:
            return None
        given = variables[value.name.value]
        if given is None:
            return 0
        return len(given) if isinstance(given, list) else 1
    if isinstance(value, ListValueNode):
        return len(value.values)
    return 0 if isinstance(value, NullValueNode) else 1


@dataclass(frozen=True, slots=True)
class _Scope:
    """What bounds the lists of the selection being walked: the page size when it is a
    connection's, and the lengths of the list arguments of the field that returned it."""

    page: int | None = None
    arguments: tuple[tuple[str, int], ...] = ()


class _CostWalk:
    """One walk over an operation; a fragment's cost is computed once per scope however often
    it is spread."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._fragment_costs: dict[tuple[str, _Scope], int] = {}

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        scope: _Scope,
        visiting: frozenset[str],
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, scope, visiting)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner, scope, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, scope, visiting)
        return total

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        scope: _Scope,
        visiting: frozenset[str],
    ) -> int:
        if not (is_object_type(parent) or is_interface_type(parent)):
            return 0
        field = parent.fields.get(node.name.value)  # type: ignore[union-attr]
        if field is None:  # __typename, introspection, or unknown (validation reports it)
            return 0
        named = get_named_type(field.type)
        if node.name.value == COUNT_FIELD and is_connection_type(parent):
            return COUNT_COST
        if is_connection(field):
            size = self._page_size(node, field)
            return size + self.selections(node.selection_set, named, _Scope(page=size), visiting)
        inner = self.selections(node.selection_set, named, self._arguments(node), visiting)
        if not is_object_list(field.type):
            return inner
        return self._bound(parent.name, node.name.value, scope) * inner  # type: ignore[union-attr]

    def _bound(self, parent: str, name: str, scope: _Scope) -> int:
        if name in PAGE_FIELDS and scope.page is not None:
            return scope.page
        bound = LIST_BOUNDS.get((parent, name))
        if bound is None:
            return UNDECLARED_LIST_BOUND
        given = dict(scope.arguments).get(bound.argument) if bound.argument else None
        return bound.maximum if given is None else min(given, bound.maximum)

    def _arguments(self, node: FieldNode) -> _Scope:
        """The lengths of the field's list arguments that bound a list below it."""
        lengths = []
        for argument in node.arguments or ():
            if argument.name.value in _BOUND_ARGUMENTS:
                length = list_length(argument.value, self._variables)
                if length is not None:
                    lengths.append((argument.name.value, length))
        return _Scope(arguments=tuple(lengths))

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

    def _fragment(self, name: str, scope: _Scope, visiting: frozenset[str]) -> int:
        key = (name, scope)
        if key in self._fragment_costs:
            return self._fragment_costs[key]
        fragment = self._fragments.get(name)
        if fragment is None or name in visiting:  # unknown or cyclic: validation reports it
            return 0
        condition = self._schema.get_type(fragment.type_condition.name.value)
        cost = self.selections(fragment.selection_set, condition, scope, visiting | {name})
        self._fragment_costs[key] = cost
        return cost


def root_list_lengths(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    field: str,
    argument: str,
    variables: Mapping[str, Any] | None,
) -> dict[str, int]:
    """The length of ``argument`` in each root ``field`` the operation runs, by response key.

    Aliases run separately; fields of the same key (a fragment spread twice) are merged into
    one execution, so they count once. A length not known before execution counts 0: execution
    refuses the missing variable."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    values = variable_values(operation, variables)
    lengths: dict[str, int] = {}
    seen: set[str] = set()
    pending = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode) and selection.name.value == field:
                given = next((a for a in selection.arguments if a.name.value == argument), None)
                length = list_length(given.value, values) if given is not None else None
                lengths[(selection.alias or selection.name).value] = length or 0
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    pending.append(fragment.selection_set)
    return lengths
