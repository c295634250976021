"""Execute a subscription event once for every subscriber that asked the same question.

The live hub hands each subscriber of an instance the same item object, and graphql-core
would then execute each subscription's document over it: with ten subscribers per instance,
ten executions of one answer, each through Strawberry's per-result machinery, and that CPU
starved the webhooks feeding the stream. Here the first subscriber to reach an event
executes it as usual; every other with the same share key (its WebSocket operation's
document, operation name, variables and the key's scopes: what the answer depends on besides
the event) takes that execution's result. A subscription that finds the answer ready sends
it as it is (``answered``, encoded once); one that gets there while it is being made waits
for it. A result with errors is not shared: each subscriber then executes, masks and reports
its own.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, OperationType
from graphql.execution import Executor
from graphql.pyutils import AwaitableOrValue
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.observability import metrics
from resolvers.fast_execution import FastExecutor


@dataclass(slots=True)
class Shared:
    """One event's answer to one share key."""

    result: ExecutionResult
    _payload: str | None = None

    def payload(self) -> str:
        """The ``next`` message's payload as Strawberry encodes it (an error-free result and
        no extension results: ``{"data": …}``), encoded once for every subscriber."""
        if self._payload is None:
            self._payload = json.dumps({"data": self.result.data}, separators=(",", ":"))
        return self._payload


_Answers = dict[Hashable, "asyncio.Future[Shared | None]"]


class _ByEvent:
    """Answers per event object, held exactly as long as the event itself is alive."""

    def __init__(self) -> None:
        self._answers: dict[int, _Answers] = {}

    def of(self, event: Any) -> _Answers:
        key = id(event)
        answers = self._answers.get(key)
        if answers is None:
            answers = self._answers[key] = {}
            weakref.finalize(event, self._answers.pop, key, None)
        return answers

    def get(self, event: Any, share_key: Hashable) -> asyncio.Future[Shared | None] | None:
        answers = self._answers.get(id(event))
        return None if answers is None else answers.get(share_key)


EVENTS = _ByEvent()


def share_key(
    query: str, operation_name: str | None, variables: Any, scopes: Any
) -> Hashable | None:
    """What a subscription's answer depends on besides the event; None when it cannot be
    told (variables that are not JSON)."""
    try:
        encoded = json.dumps(variables, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return (query, operation_name, encoded, frozenset(scopes))


async def answered(event: Any, key: Hashable | None) -> str | None:
    """The payload another subscriber's execution made for ``event`` under ``key`` (waiting
    for one under way); None when there is none to share."""
    pending = None if key is None else EVENTS.get(event, key)
    if pending is None:
        return None
    # Shielded: this subscriber leaving must not cancel the others' execution.
    shared = await asyncio.shield(pending)
    if shared is None:
        return None
    metrics.live_event_results.labels(result="shared").inc()
    return shared.payload()


class SharedEvents(Executor):
    """graphql-core executor mixin: per-event execution of a subscription whose context has
    a share key (``context.live.share_key``) is done once per key and event.

    Each event also gets its own memo of collected subfields: graphql-core 3.3 shares the
    subscription's one with every event and keys it by the identity of lists made anew per
    event, kept alive with it, so a long subscription grew it by every event it executed
    (memory and garbage-collection time with it). It is graphql-core's private
    ``_relevant_sub_fields``, checked by tests/test_private_apis.py."""

    def build_per_event_executor(self, payload: Any) -> Executor:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        if serially is not False or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        key = getattr(getattr(self.context_value, "live", None), "share_key", None)
        if key is None or not _weakly_referable(self.root_value):
            return super().execute_operation(serially)
        return self._shared(key)

    async def _shared(self, key: Hashable) -> ExecutionResult:
        answers = EVENTS.of(self.root_value)
        pending = answers.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                metrics.live_event_results.labels(result="shared").inc()
                return shared.result
            return await self._own()
        future: asyncio.Future[Shared | None] = asyncio.get_running_loop().create_future()
        answers[key] = future
        result: ExecutionResult | None = None
        try:
            result = await self._own()
            return result
        finally:
            future.set_result(Shared(result) if result is not None and not result.errors else None)

    async def _own(self) -> ExecutionResult:
        metrics.live_event_results.labels(result="executed").inc()
        result = super().execute_operation(False)
        executed: ExecutionResult = await result if self.is_awaitable(result) else result
        return executed


def _weakly_referable(event: Any) -> bool:
    try:
        weakref.ref(event)
    except TypeError:
        return False
    return True


class SharedEventsExecutor(SharedEvents, StrawberryGraphQLCoreExecutionContext):
    """Strawberry's standard executor, with shared subscription events."""


class FastSharedExecutor(SharedEvents, FastExecutor):
    """The fast query path (resolvers/fast_execution), with shared subscription events."""
