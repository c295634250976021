"""Execute a subscription event once for every subscriber that asked the same question.

The live hub hands each subscriber of an instance the same item object, and graphql-core
then executes each subscription's document over it: with ten subscribers per instance that
was ten executions of one answer, and the CPU they took starved the webhooks that feed the
stream. Here the first subscriber to reach an event executes it; the others with the same
document, operation, variables and scopes await that execution and send its result. A
result with errors is not shared: each subscriber then executes, masks and reports its own.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Hashable
from typing import Any

from graphql import ExecutionResult, OperationType
from graphql.execution import Executor
from graphql.pyutils import AwaitableOrValue
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.observability import metrics
from resolvers.fast_execution import FastExecutor

_Results = dict[Hashable, "asyncio.Future[ExecutionResult | None]"]


class _ByEvent:
    """Results per event object, held exactly as long as the event itself is alive."""

    def __init__(self) -> None:
        self._results: dict[int, _Results] = {}

    def of(self, event: Any) -> _Results:
        key = id(event)
        results = self._results.get(key)
        if results is None:
            results = self._results[key] = {}
            weakref.finalize(event, self._results.pop, key, None)
        return results


EVENTS = _ByEvent()


class SharedEvents(Executor):
    """graphql-core executor mixin: per-event execution of subscriptions is shared."""

    _event_key: Hashable | None = None
    _keyed = False

    def build_per_event_executor(self, payload: Any) -> Executor:
        if not self._keyed:
            self._event_key, self._keyed = self._share_key(), True
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        key = self._event_key
        if key is None or serially is not False or not _shareable(self.root_value):
            return super().execute_operation(serially)
        return self._shared(key)

    def _share_key(self) -> Hashable | None:
        """What the result depends on besides the event: None when it cannot be told."""
        operation = self.operation
        if operation.operation is not OperationType.SUBSCRIPTION or operation.loc is None:
            return None
        principal = getattr(self.context_value, "principal", None)
        scopes = getattr(principal, "scopes", None)
        if scopes is None:
            return None
        try:
            variables = json.dumps(self.variable_values.coerced, sort_keys=True)
        except (TypeError, ValueError):
            return None
        name = operation.name.value if operation.name else None
        return (operation.loc.source.body, name, variables, frozenset(scopes))

    async def _shared(self, key: Hashable) -> ExecutionResult:
        results = EVENTS.of(self.root_value)
        pending = results.get(key)
        if pending is not None:
            # Shielded: this subscriber leaving must not cancel the others' execution.
            shared = await asyncio.shield(pending)
            if shared is not None:
                metrics.live_event_results.labels(result="shared").inc()
                return shared
            return await self._own()
        future: asyncio.Future[ExecutionResult | None] = asyncio.get_running_loop().create_future()
        results[key] = future
        result: ExecutionResult | None = None
        try:
            result = await self._own()
            return result
        finally:
            future.set_result(result if result is not None and not result.errors else None)

    async def _own(self) -> ExecutionResult:
        metrics.live_event_results.labels(result="executed").inc()
        result = super().execute_operation(False)
        executed: ExecutionResult = await result if self.is_awaitable(result) else result
        return executed


def _shareable(event: Any) -> bool:
    try:
        weakref.ref(event)
    except TypeError:
        return False
    return True


class SharedEventsExecutor(SharedEvents, StrawberryGraphQLCoreExecutionContext):
    """Strawberry's standard executor, with shared subscription events."""


class FastSharedExecutor(SharedEvents, FastExecutor):
    """The fast query path (resolvers/fast_execution), with shared subscription events."""
