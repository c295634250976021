"""What a mutation's answer may show to a key without the 'read' scope.

A mutation answers with a payload holding the objects it wrote (``template``, ``enrollment``,
``enrollments``, ``event``…) and its errors. Those objects' own fields (scalars and enums: id,
name, status, metadata…) are the write's result and need only the mutation's scope. Any field
of theirs that returns an object or a list of objects (a relation such as ``instances``,
``enrollment`` or ``template``, or a figure such as ``metrics``) reads beyond the write, so it
needs 'read' like a query. The rule follows from the schema's types, so a new mutation or a new
relation is covered without being named here. Checked on the document before execution: a
refused operation writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_interface_type,
    is_object_type,
)
from strawberry.extensions import SchemaExtension

from app.domain.enums import Scope
from schema.extensions.cost import variable_values
from schema.permissions import CanRead

PAYLOAD_DEPTH = 2
"""The mutation field is at depth 1, its payload's fields (the written objects) at 2: fields
of those objects, at depth 3 and below, are checked."""


@dataclass(frozen=True, slots=True)
class Read:
    """A selected field that reads beyond what the mutation wrote."""

    path: tuple[str, ...]
    """Response keys (aliases where given) from the mutation field down."""
    node: FieldNode


def reads_beyond_writes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> list[Read]:
    """The fields of a mutation operation that return objects below the written objects."""
    root = schema.mutation_type
    if operation.operation is not OperationType.MUTATION or root is None:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(schema, fragments, variable_values(operation, variables))
    return list(walk.reads(operation.selection_set, root, ()))


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._spread: set[tuple[str, int]] = set()

    def reads(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        path: tuple[str, ...],
    ) -> Iterator[Read]:
        for selection in selection_set.selections if selection_set else ():
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                yield from self._field(selection, parent, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                yield from self.reads(selection.selection_set, inner, path)
            elif isinstance(selection, FragmentSpreadNode):
                # A fragment walked once per depth: spread again (or in a cycle) it would only
                # repeat what it reads, and a document of fragments spreading fragments twice
                # over would take exponential time.
                key = (selection.name.value, len(path))
                fragment = self._fragments.get(key[0])
                if fragment is not None and key not in self._spread:
                    self._spread.add(key)
                    condition = self._schema.get_type(fragment.type_condition.name.value)
                    yield from self.reads(fragment.selection_set, condition, path)

    def _field(
        self, node: FieldNode, parent: GraphQLNamedType | None, path: tuple[str, ...]
    ) -> Iterator[Read]:
        if not (is_object_type(parent) or is_interface_type(parent)):
            return
        field = parent.fields.get(node.name.value)  # type: ignore[union-attr]
        if field is None:  # __typename, or unknown (validation reports it)
            return
        here = (*path, (node.alias or node.name).value)
        named = get_named_type(field.type)
        if not (is_object_type(named) or is_interface_type(named)):
            return
        if len(here) > PAYLOAD_DEPTH:
            yield Read(here, node)  # what lies under it is refused with it
            return
        yield from self.reads(node.selection_set, named, here)

    def _included(self, selection: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        """``@skip`` and ``@include`` as execution will apply them; a condition not known yet
        (a variable of the wrong type) counts as included."""
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            if isinstance(condition, BooleanValueNode):
                value: Any = condition.value
            elif isinstance(condition, VariableNode):
                value = self._variables.get(condition.name.value)
            else:
                continue
            if value is (name == "skip"):
                return False
        return True


def forbidden(read: Read) -> GraphQLError:
    field = ".".join(read.path[1:])
    return GraphQLError(
        f"{CanRead.message}: '{field}' reads beyond what the mutation wrote (its own fields"
        " need only 'write'; objects reached from it need 'read')",
        read.node,
        path=list(read.path),
        extensions=dict(CanRead.error_extensions),
    )


class PayloadReadScope(SchemaExtension):
    """Refuse, before execution, a mutation whose answer reads beyond its write, when the key
    lacks 'read'. ``schema`` is the graphql-core schema, as for the cost limit."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        principal = getattr(context.context, "principal", None)
        if (
            document is not None
            and context.result is None
            and principal is not None
            and not principal.allows(Scope.READ)
        ):
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                reads = reads_beyond_writes(self.schema, document, operation, context.variables)
                if reads:
                    context.result = ExecutionResult(
                        data=None, errors=[forbidden(read) for read in reads]
                    )
        yield
