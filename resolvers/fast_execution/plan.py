"""Compile a validated query operation into a plan: per selection, what to read and how.

graphql-core re-derives, for every field of every object, which resolver to call, how to
complete its type and which sub-fields to collect. A plan decides all of that once per
document (fragments merged, aliases and directives applied), so execution only walks data.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from operator import attrgetter, methodcaller
from typing import Any, NamedTuple

from graphql import (
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    GraphQLUnionType,
    OperationType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.language import FieldNode, Node, OperationDefinitionNode, VariableNode, visit
from graphql.language.visitor import Visitor

STRAWBERRY_DEFINITION = "strawberry-definition"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class Unsupported(Exception):
    """The operation uses something the plan does not model; the standard executor runs it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Bail(Exception):
    """Raised while executing a plan when the response would carry an error: the standard
    executor then runs the operation, so errors keep graphql-core's exact paths and order."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Shape(Enum):
    LEAF = "leaf"
    OBJECT = "object"
    LIST = "list"
    ABSTRACT = "abstract"


@dataclass(frozen=True, slots=True)
class AbstractPlan:
    """An interface or union: a plan per type it can be, and what its ``resolve_type`` is
    given to choose one (graphql-core passes the info of the field that returned the value)."""

    type: GraphQLAbstractType
    plans: Mapping[str, ObjectPlan]
    definition: GraphQLField
    parent: GraphQLObjectType
    nodes: list[FieldNode]


@dataclass(frozen=True, slots=True)
class Completion:
    """How a resolved value becomes response data (graphql-core's ``complete_value``)."""

    shape: Shape
    non_null: bool
    coerce: Callable[[Any], Any] | None = None
    plan: ObjectPlan | None = None
    item: Completion | None = None
    abstract: AbstractPlan | None = None
    scalar: GraphQLLeafType | None = None

    @property
    def needs_path(self) -> bool:
        """Whether a resolver below this value reads a path (``info.path``); an abstract
        value's ``resolve_type`` is given its field's info, which holds the field's path."""
        if self.plan is not None:
            return self.plan.needs_path
        if self.abstract is not None:
            return True
        return self.item is not None and self.item.needs_path


class Source(Enum):
    ATTRIBUTE = "attribute"
    """A Strawberry field without resolver, permission or extension: ``getattr`` only."""
    RESOLVER = "resolver"
    TYPENAME = "typename"


@dataclass(frozen=True, slots=True)
class DirectCall:
    """A Strawberry resolver with no extension, permission or exception handler: called
    without Strawberry's wrapper, its arguments converted once per execution, not per parent."""

    field: Any
    resolver: Any
    passes_self: bool
    source_parameters: tuple[str, ...]
    info_parameter: str | None


@dataclass(frozen=True, slots=True)
class FieldPlan:
    key: str
    source: Source
    completion: Completion | None
    attribute: str = ""
    definition: GraphQLField | None = None
    nodes: list[FieldNode] = field(default_factory=list)
    direct: DirectCall | None = None


def direct_call(strawberry_field: Any, handlers: tuple[Any, ...]) -> DirectCall | None:
    resolver = strawberry_field.base_resolver
    if resolver is None or strawberry_field.extensions or handlers:
        return None
    info = resolver.info_parameter
    return DirectCall(
        strawberry_field,
        resolver,
        resolver.self_parameter is not None,
        tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p),
        info.name if info is not None else None,
    )


class Leaf(NamedTuple):
    """A leaf field read straight off its object, unpacked per value in the executor's
    tightest loop: a value of exactly type ``exact`` is the answer as it is, or once through
    ``convert`` when set; any other value goes through ``coerce`` as on the general path."""

    key: str
    exact: type | None
    convert: Callable[[Any], Any] | None
    coerce: Callable[[Any], Any]
    non_null: bool


def leaf(key: str, scalar: GraphQLLeafType, coerce: Callable[[Any], Any], non_null: bool) -> Leaf:
    """The ``Leaf`` of a field of type ``scalar``: the exact type and conversion only where
    they give what ``coerce`` would, without its call (a third of a dashboard's fields are
    strings, a fifth enums, a sixth Strawberry's ``isoformat`` of a datetime)."""
    if scalar is GraphQLString or scalar is GraphQLID:
        return Leaf(key, str, None, coerce, non_null)
    if scalar is GraphQLBoolean:
        return Leaf(key, bool, None, coerce, non_null)
    if _calls_isoformat(getattr(scalar, "coerce_output_value", None)):
        return Leaf(key, datetime, datetime.isoformat, coerce, non_null)
    if isinstance(scalar, GraphQLEnumType):
        return Leaf(key, str, _Answers(coerce).__getitem__, coerce, non_null)
    return Leaf(key, None, None, coerce, non_null)


_ISOFORMAT = methodcaller("isoformat").__reduce__()


def _calls_isoformat(coercion: Any) -> bool:
    """Whether ``coercion`` is ``methodcaller("isoformat")``, which Strawberry's DateTime
    coerces with: told by what it pickles as, which names the method and its arguments."""
    return isinstance(coercion, methodcaller) and coercion.__reduce__() == _ISOFORMAT


class _Answers(dict[str, Any]):
    """``coerce``'s answer per string it was given, each computed once: an enum's values come
    from the database as strings, a few distinct ones (a value it refuses is not kept)."""

    def __init__(self, coerce: Callable[[Any], Any]) -> None:
        super().__init__()
        self._coerce = coerce

    def __missing__(self, value: str) -> Any:
        answer = self[value] = self._coerce(value)
        return answer


def _leaf_of(field: FieldPlan) -> Leaf:
    completion = field.completion
    assert completion is not None
    assert completion.scalar is not None
    assert completion.coerce is not None
    return leaf(field.key, completion.scalar, completion.coerce, completion.non_null)


def _reader(attributes: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """One call that reads all ``attributes`` of an object as a tuple."""
    if len(attributes) == 1:
        read_one = attrgetter(attributes[0])
        return lambda source: (read_one(source),)
    return attrgetter(*attributes)


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    type: GraphQLObjectType
    fields: tuple[FieldPlan, ...]
    needs_path: bool = False
    """Objects without a resolver anywhere below are completed without building paths."""
    keys: tuple[str, ...] = ()
    """Every field's response key, in order: the answer is made with them, then filled."""
    leaves: tuple[Leaf, ...] = ()
    """The attribute fields of leaf type, read all at once by ``read``."""
    read: Callable[[Any], tuple[Any, ...]] | None = None
    others: tuple[FieldPlan, ...] = ()
    """The remaining fields, in order: resolvers, objects, lists, ``__typename``."""

    @property
    def type_name(self) -> str:
        return self.type.name


def leaf_coercer(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """``coerce_output_value`` with the checks of graphql-core's ``complete_leaf_value``,
    short-circuited for the values that coercion would return unchanged."""
    coerce = leaf.coerce_output_value

    def checked(value: Any) -> Any:
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Bail("a leaf coerced to null")
        return coerced

    if leaf is GraphQLString or leaf is GraphQLID:
        return lambda value: value if type(value) is str else checked(value)
    if leaf is GraphQLInt:
        return lambda value: (
            value if type(value) is int and _INT_MIN <= value <= _INT_MAX else checked(value)
        )
    if leaf is GraphQLBoolean:
        return lambda value: value if type(value) is bool else checked(value)
    if leaf is GraphQLFloat:
        return lambda value: (
            value if type(value) is float and math.isfinite(value) else checked(value)
        )
    if isinstance(leaf, GraphQLEnumType):
        memo: dict[tuple[type, Hashable], Any] = {}

        def enum_value(value: Any) -> Any:
            key = (type(value), value)
            try:
                return memo[key]
            except KeyError:
                memo[key] = coerced = checked(value)
                return coerced
            except TypeError:  # unhashable: coerce every time
                return checked(value)

        return enum_value
    return checked


@dataclass(slots=True)
class _Compiler:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    variables: VariableValues
    operation: Any
    hide_suggestions: bool
    leaf_coercers: dict[str, Callable[[Any], Any]]

    def object_plan(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> ObjectPlan:
        if object_type.is_type_of is not None:
            raise Unsupported("is_type_of")
        fields = []
        for key, details in grouped.items():
            if any(d.defer_usage or d.fragment_variable_values for d in details):
                raise Unsupported("defer or fragment variables")
            name = details[0].node.name.value
            if name == "__typename":
                fields.append(FieldPlan(key, Source.TYPENAME, None))
                continue
            if name.startswith("__"):
                raise Unsupported("introspection")
            definition = self.schema.get_field(object_type, name)
            if definition is None:
                continue  # graphql-core leaves an unknown field out of the response
            completion = self.completion(definition.type, details, (definition, object_type))
            fields.append(self.field_plan(key, definition, details, completion))
        needs_path = any(
            f.source is Source.RESOLVER or (f.completion is not None and f.completion.needs_path)
            for f in fields
        )
        read_off = [
            f
            for f in fields
            if f.source is Source.ATTRIBUTE
            and f.completion is not None
            and f.completion.shape is Shape.LEAF
        ]
        leaves = tuple(_leaf_of(f) for f in read_off)
        read = _reader(tuple(f.attribute for f in read_off)) if read_off else None
        others = tuple(f for f in fields if all(f is not r for r in read_off))
        keys = tuple(f.key for f in fields)
        return ObjectPlan(object_type, tuple(fields), needs_path, keys, leaves, read, others)

    def field_plan(
        self,
        key: str,
        definition: GraphQLField,
        details: list[FieldDetails],
        completion: Completion,
    ) -> FieldPlan:
        nodes = [d.node for d in details]
        strawberry_field = (definition.extensions or {}).get(STRAWBERRY_DEFINITION)
        basic = getattr(definition.resolve, "_is_default", False)
        if (
            basic
            and strawberry_field is not None
            and strawberry_field.default_resolver is getattr
            and not strawberry_field.extensions
        ):
            return FieldPlan(key, Source.ATTRIBUTE, completion, strawberry_field.python_name)
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        direct = (
            direct_call(strawberry_field, strawberry_schema.exception_handlers)
            if strawberry_field is not None and strawberry_schema is not None
            else None
        )
        return FieldPlan(key, Source.RESOLVER, completion, "", definition, nodes, direct)

    def completion(
        self,
        output: GraphQLOutputType,
        details: list[FieldDetails],
        field: tuple[GraphQLField, GraphQLObjectType],
    ) -> Completion:
        """``field`` is the field whose value this is, and the type it is a field of."""
        non_null = isinstance(output, GraphQLNonNull)
        inner = output.of_type if isinstance(output, GraphQLNonNull) else output
        if isinstance(inner, GraphQLList):
            item = self.completion(inner.of_type, details, field)
            return Completion(Shape.LIST, non_null, item=item)
        if is_leaf_type(inner):
            coerce = self.leaf_coercers.get(inner.name)
            if coerce is None:
                coerce = self.leaf_coercers[inner.name] = leaf_coercer(inner)
            return Completion(Shape.LEAF, non_null, coerce=coerce, scalar=inner)
        if isinstance(inner, GraphQLObjectType):
            return Completion(Shape.OBJECT, non_null, plan=self.subfield_plan(inner, details))
        if isinstance(inner, GraphQLInterfaceType | GraphQLUnionType):
            if inner.resolve_type is None:
                raise Unsupported("abstract type without resolve_type")
            plans = {
                t.name: self.subfield_plan(t, details)
                for t in self.schema.get_possible_types(inner)
            }
            definition, parent = field
            nodes = [d.node for d in details]
            abstract = AbstractPlan(inner, plans, definition, parent, nodes)
            return Completion(Shape.ABSTRACT, non_null, abstract=abstract)
        raise Unsupported("output type")

    def subfield_plan(
        self, object_type: GraphQLObjectType, details: list[FieldDetails]
    ) -> ObjectPlan:
        """The plan of the fields selected on ``object_type`` (fragments on other types left
        out, as graphql-core collects them once the runtime type is known)."""
        collected = collect_subfields(
            self.schema,
            self.fragments,
            self.variables,
            self.operation,
            object_type,
            details,
            self.hide_suggestions,
        )
        if collected.new_defer_usages:
            raise Unsupported("defer")
        return self.object_plan(object_type, collected.grouped_field_set)


def compile_query(
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDetails],
    variables: VariableValues,
    operation: Any,
    hide_suggestions: bool,
) -> ObjectPlan:
    """The plan of a query operation; raises Unsupported for anything else."""
    if operation.operation is not OperationType.QUERY:
        raise Unsupported(operation.operation.value)
    root = schema.query_type
    if root is None:
        raise Unsupported("no query type")
    collected = collect_fields(schema, fragments, variables, root, operation, hide_suggestions)
    if collected.new_defer_usages:
        raise Unsupported("defer")
    compiler = _Compiler(schema, fragments, variables, operation, hide_suggestions, {})
    return compiler.object_plan(root, collected.grouped_field_set)


class _DirectiveVariables(Visitor):
    """Collects the variables @skip and @include read: the only ones that change a plan."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.depth = 0

    def enter_directive(self, *_: Any) -> None:
        self.depth += 1

    def leave_directive(self, *_: Any) -> None:
        self.depth -= 1

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if self.depth:
            self.names.add(node.name.value)


def directive_variables(definitions: Iterable[Node]) -> frozenset[str]:
    visitor = _DirectiveVariables()
    for definition in definitions:
        visit(definition, visitor)
    return frozenset(visitor.names)


class PlanCache:
    """Plans by document text, operation name and the values of directive variables.

    Bounded (least recently used out) so that a stream of distinct queries cannot grow it.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._plans: OrderedDict[Hashable, ObjectPlan | str] = OrderedDict()
        self._directive_variables: OrderedDict[str, frozenset[str]] = OrderedDict()

    def key(
        self,
        operation: OperationDefinitionNode,
        fragments: Iterable[Node],
        variables: dict[str, Any],
    ) -> Hashable | None:
        """None when the plan cannot be cached (no source text, unhashable directive values)."""
        if operation.loc is None:
            return None
        body = operation.loc.source.body
        names = self._remember(
            self._directive_variables,
            body,
            lambda: directive_variables((operation, *fragments)),
        )
        values = tuple(sorted((name, variables.get(name)) for name in names))
        name = operation.name.value if operation.name else None
        key = (body, name, values)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def get_or_compile(
        self, key: Hashable | None, compile_plan: Callable[[], ObjectPlan]
    ) -> ObjectPlan:
        def attempt() -> ObjectPlan | str:
            try:
                return compile_plan()
            except Unsupported as unsupported:
                return unsupported.reason  # a reason, not the exception: a raised one keeps frames

        result = attempt() if key is None else self._remember(self._plans, key, attempt)
        if isinstance(result, str):
            raise Unsupported(result)
        return result

    def _remember(
        self, store: OrderedDict[Any, Any], key: Hashable, make: Callable[[], Any]
    ) -> Any:
        try:
            store.move_to_end(key)
            return store[key]
        except KeyError:
            value = store[key] = make()
            if len(store) > self._size:
                store.popitem(last=False)
            return value
