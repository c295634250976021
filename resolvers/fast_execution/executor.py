"""Run query plans: the same resolvers and DataLoaders, a fraction of graphql-core's overhead.

Strawberry builds its graphql-core executor from ``FastExecutor``. For a query it runs the
operation's plan instead of graphql-core's field-by-field completion; anything the plan does
not model, and any response that would carry an error, goes to the standard executor, so
responses are identical either way (the differential tests check it).
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable
from inspect import CO_ITERABLE_COROUTINE
from types import GeneratorType
from typing import Any

from graphql import ExecutionResult, GraphQLError
from graphql.execution.values import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

from app.db.errors import is_database_unavailable
from resolvers.fast_execution.plan import (
    AbstractPlan,
    Bail,
    Completion,
    DirectCall,
    FieldPlan,
    ObjectPlan,
    PlanCache,
    Shape,
    Source,
    Unsupported,
    compile_query,
)

PLANS = PlanCache()
FallbackListener = Callable[[str], None]
_listeners: list[FallbackListener] = []


def on_fallback(listener: FallbackListener) -> None:
    """Be told the reason each time a query leaves the fast path (metrics use this)."""
    if listener not in _listeners:
        _listeners.append(listener)


def stop_fallback_listener(listener: FallbackListener) -> None:
    """Undo ``on_fallback``."""
    if listener in _listeners:
        _listeners.remove(listener)


def _fell_back(reason: str) -> None:
    for listener in _listeners:
        listener(reason)


_AWAITABLE_BY_TYPE: dict[type, bool] = {}


def is_awaitable(value: Any) -> bool:
    """What ``await`` accepts, decided on the value's type (as ``await`` itself does) and
    remembered per type: probing each row for ``__await__`` was a tenth of a request."""
    kind = type(value)
    if kind is GeneratorType:  # a generator-based coroutine is one by its code's flags
        return bool(value.gi_code.co_flags & CO_ITERABLE_COROUTINE)
    try:
        return _AWAITABLE_BY_TYPE[kind]
    except KeyError:
        awaitable = _AWAITABLE_BY_TYPE[kind] = hasattr(kind, "__await__")
        return awaitable


def _weakly_bound(method: Any) -> Callable[..., Any]:
    """``method`` (bound to an object) called through a weak reference to its object."""
    if not inspect.ismethod(method):
        return method  # type: ignore[no-any-return]
    reference = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = reference()
        if bound is None:
            raise RuntimeError("the operation these helpers served has finished")
        return bound(*args)

    return call


def _untouched(*_: Any) -> None:
    """A probe resolver: middleware that wraps it shows the fast path must step aside."""


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core executor whose query operations run through a compiled plan."""

    def execute_operation(
        self, serially: bool | None = None
    ) -> AwaitableOrValue[ExecutionResult | Any]:
        if self.operation.operation.value != "query" or serially:
            return super().execute_operation(serially)
        try:
            plan = self._plan()
        except Unsupported as unsupported:
            _fell_back(unsupported.reason)
            return super().execute_operation(serially)
        return self._run(plan, serially)

    def _plan(self) -> ObjectPlan:
        manager = self.middleware_manager
        if manager is not None and manager.get_field_resolver(_untouched) is not _untouched:
            raise Unsupported("middleware")
        key = PLANS.key(
            self.operation, self.fragment_definitions.values(), self.variable_values.coerced
        )
        return PLANS.get_or_compile(
            key,
            lambda: compile_query(
                self.schema,
                self.fragments,
                self.variable_values,
                self.operation,
                self.hide_suggestions,
            ),
        )

    async def _run(self, plan: ObjectPlan, serially: bool | None) -> Any:
        try:
            return await self._answer(plan, serially)
        finally:
            self._unbind_helpers()

    def _unbind_helpers(self) -> None:
        """graphql-core gives resolvers helpers bound to the executor, which holds the request's
        context: a reference cycle that kept all a request loaded (rows, pages, DataLoader
        futures) until a full collection. Held weakly, the helpers work while the executor
        lives, and the request's objects go with its answer."""
        helpers = self.async_helpers
        self.async_helpers = type(helpers)(*(_weakly_bound(method) for method in helpers))

    async def _answer(self, plan: ObjectPlan, serially: bool | None) -> Any:
        try:
            data = await _PlanRun(self).execute(plan)
        except Bail as bail:
            if is_database_unavailable(bail):
                # A re-run would wait on the missing database a second time (and could meet
                # another error): answer with this one, which resolvers/database_outage turns
                # into a 503.
                error = GraphQLError("the database is unavailable", original_error=bail.__cause__)
                self.collected_errors.add(error, None)
                return self.build_response(None)
            _fell_back(bail.reason)
            # From a clean slate: with warm DataLoader caches the standard executor would
            # complete fields in another order and could report other errors first.
            reset = getattr(self.context_value, "reset_for_retry", None)
            if reset is not None:
                reset()
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        return self.build_response(data)


Pending = tuple[Awaitable[Any], Completion, Path | None, Any, Any]


class _PlanRun:
    """One execution of a plan: sync values are completed at once, awaitables in rounds, so
    every DataLoader sees all the keys of a round in one batch, as with graphql-core."""

    __slots__ = (
        "arguments",
        "converted",
        "executor",
        "info_class",
        "is_awaitable",
        "pending",
        "strawberry",
    )

    def __init__(self, executor: FastExecutor) -> None:
        self.executor = executor
        self.is_awaitable = is_awaitable
        self.pending: list[Pending] = []
        self.arguments: dict[int, dict[str, Any]] = {}
        self.converted: dict[int, dict[str, Any]] = {}
        self.strawberry: Any = getattr(executor.schema, "_strawberry_schema", None)
        self.info_class: Any = self.strawberry.config.info_class if self.strawberry else None

    async def execute(self, plan: ObjectPlan) -> dict[str, Any]:
        try:
            data = self.execute_object(plan, self.executor.root_value, None)
            while self.pending:
                batch, self.pending = self.pending, []
                results = await asyncio.gather(*(p[0] for p in batch), return_exceptions=True)
                for (_, completion, path, container, key), result in zip(
                    batch, results, strict=True
                ):
                    if isinstance(result, BaseException):
                        if not isinstance(result, Exception):
                            raise result
                        raise Bail("field error") from result
                    self.complete(completion, result, path, container, key)
        except Bail:
            self.discard_pending()
            raise
        except Exception as error:
            self.discard_pending()
            raise Bail("field error") from error
        return data

    def discard_pending(self) -> None:
        """Close what will never be awaited, so no coroutine is left dangling."""
        for awaitable, *_ in self.pending:
            close = getattr(awaitable, "close", None) or getattr(awaitable, "cancel", None)
            if close is not None:
                close()
        self.pending = []

    def execute_object(self, plan: ObjectPlan, source: Any, path: Path | None) -> dict:
        """The object's answer: keys in the plan's order, leaves read off all at once, then
        the other fields one by one."""
        out = dict.fromkeys(plan.keys)
        if plan.read is not None:
            for (key, exact, convert, coerce, non_null), value in zip(
                plan.leaves, plan.read(source), strict=True
            ):
                if type(value) is exact:
                    out[key] = value if convert is None else convert(value)
                elif value is not None:
                    out[key] = coerce(value)
                elif non_null:
                    raise Bail("null in a non-null position")
        for field in plan.others:
            kind = field.source
            if kind is Source.ATTRIBUTE:
                completion = field.completion
                field_path = (
                    Path(path, field.key, plan.type.name) if completion.needs_path else None
                )
                self.complete(
                    completion, getattr(source, field.attribute), field_path, out, field.key
                )
            elif kind is Source.TYPENAME:
                out[field.key] = plan.type.name
            else:
                self.resolve(plan, field, source, path, out)
        return out

    def resolve(
        self, plan: ObjectPlan, field: FieldPlan, source: Any, path: Path | None, out: dict
    ) -> None:
        executor = self.executor
        definition = field.definition
        assert definition is not None
        field_path = Path(path, field.key, plan.type.name)
        info = executor.build_resolve_info(definition, field.nodes, plan.type, field_path)
        if field.direct is not None:
            result = self.call_direct(field, field.direct, source, info)
        else:
            resolve_fn = definition.resolve or executor.field_resolver
            result = resolve_fn(source, info, **self.arguments_of(field))
        if self.is_awaitable(result):
            out[field.key] = None  # holds the key's place in the response order
            self.pending.append((result, field.completion, field_path, out, field.key))  # type: ignore[arg-type]
        else:
            self.complete(field.completion, result, field_path, out, field.key)

    def call_direct(self, field: FieldPlan, direct: DirectCall, source: Any, info: Any) -> Any:
        """What Strawberry's resolver wrapper does, minus re-converting the same arguments."""
        strawberry_info = self.info_class(_raw_info=info, _field=direct.field)
        try:
            kwargs = self.converted[id(field)]
        except KeyError:
            kwargs = self.converted[id(field)] = convert_arguments(
                self.arguments_of(field),
                direct.field.arguments,
                scalar_registry=self.strawberry.schema_converter.scalar_registry,
                config=self.strawberry.config,
                info=strawberry_info,
            )
        if direct.source_parameters or direct.info_parameter:
            kwargs = dict(kwargs)
            for name in direct.source_parameters:
                kwargs[name] = source
            if direct.info_parameter:
                kwargs[direct.info_parameter] = strawberry_info
        if direct.passes_self:
            return direct.resolver(source, **kwargs)
        return direct.resolver(**kwargs)

    def arguments_of(self, field: FieldPlan) -> dict[str, Any]:
        """Coerced once per execution: every parent of a field shares its arguments."""
        try:
            return self.arguments[id(field)]
        except KeyError:
            definition = field.definition
            assert definition is not None
            node = field.nodes[0]
            executor = self.executor
            values = (
                get_argument_values(
                    definition, node, executor.variable_values, None, executor.hide_suggestions
                )
                if definition.args or node.arguments
                else {}
            )
            self.arguments[id(field)] = values
            return values

    def complete(
        self, completion: Any, value: Any, path: Path | None, container: Any, key: Any
    ) -> None:
        if value is None:
            if completion.non_null:
                raise Bail("null in a non-null position")
            container[key] = None
            return
        if isinstance(value, Exception):
            raise Bail("field error")
        shape = completion.shape
        if shape is Shape.LEAF:
            container[key] = completion.coerce(value)
        elif shape is Shape.OBJECT:
            container[key] = self.execute_object(completion.plan, value, path)
        elif shape is Shape.ABSTRACT:
            self.complete_abstract(completion.abstract, value, path, container, key)
        else:
            if not isinstance(value, list | tuple):
                raise Bail("a list field returned something else")
            item = completion.item
            container[key] = items = [None] * len(value)
            if item.shape is Shape.LEAF:
                self.complete_leaves(item, value, items)
                return
            is_awaitable = self.is_awaitable
            needs_path = item.needs_path
            for index, element in enumerate(value):
                item_path = Path(path, index, None) if needs_path else None
                if is_awaitable(element):
                    self.pending.append((element, item, item_path, items, index))
                else:
                    self.complete(item, element, item_path, items, index)

    def complete_abstract(
        self, abstract: AbstractPlan, value: Any, path: Path, container: Any, key: Any
    ) -> None:
        """graphql-core's ``complete_abstract_value``: ``resolve_type`` names the type, given
        the info of the field the value came from (a list's items share their field's info),
        and that type's plan completes the value. Anything else, the standard path reports."""
        field_path = path
        while isinstance(field_path.key, int):
            field_path = field_path.prev
        info = self.executor.build_resolve_info(
            abstract.definition, abstract.nodes, abstract.parent, field_path
        )
        name = abstract.type.resolve_type(value, info, abstract.type)  # type: ignore[misc]
        plan = abstract.plans.get(name) if isinstance(name, str) else None
        if plan is None:
            close = getattr(name, "close", None)  # an awaitable resolve_type's coroutine
            if close is not None:
                close()
            raise Bail("abstract type not resolved")
        container[key] = self.execute_object(plan, value, path)

    @staticmethod
    def complete_leaves(item: Completion, values: Any, items: list[Any]) -> None:
        coerce = item.coerce
        assert coerce is not None
        for index, element in enumerate(values):
            if element is None:
                if item.non_null:
                    raise Bail("null in a non-null position")
                continue
            items[index] = coerce(element)
