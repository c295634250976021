"""The Subscription root's resolvers: register with the process's hub, replay what ``after``
asks for from the activity log, then pass on what the hub fans out.

An item another subscriber with the same document already answered is sent as that answer
(resolvers/shared_events.py). Any other is executed with fresh loaders, primed with the rows
the hub loaded once for every subscriber of the instance (so nested fields reuse them), and on
its own short-lived read connection: an idle subscription holds no database connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from app.services.live.activity import Position, parse_instance_id, position_after
from app.services.live.hub import Close, Hub, Subscriber, Wants
from resolvers.context import Context
from resolvers.errors import bad_arguments_as_graphql_errors
from resolvers.live import InstanceSnapshot, LiveActivity
from resolvers.loaders import Loaders, RequestDatabase
from resolvers.shared_events import answered


@dataclass(frozen=True, slots=True)
class LiveSession:
    """What a WebSocket connection gives its subscriptions: the hub and how to close it; and
    per operation, its share key and how to send it an answer already encoded."""

    hub: Hub
    close: Close
    share_key: Hashable | None = None
    send_payload: Callable[[str], Awaitable[None]] | None = None

    async def sent_as_shared(self, event: Any) -> bool:
        """Whether ``event`` went out as another subscriber's answer to the same document."""
        if self.send_payload is None:
            return False
        payload = await answered(event, self.share_key)
        if payload is None:
            return False
        await self.send_payload(payload)
        return True


class _Messages:
    """One read connection and one set of loaders per delivered message."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._db: RequestDatabase | None = None

    async def next(self, delivered: LiveActivity | InstanceSnapshot | None) -> None:
        await self.close()
        self._db = RequestDatabase(self._context.engine)
        self._context.db = self._db
        self._context.loaders = Loaders(self._db)
        if delivered is not None:
            delivered.prime(self._context.loaders)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


def _session(context: Context) -> LiveSession:
    if context.live is None:
        raise GraphQLError(
            "subscriptions are served over WebSocket at /graphql (graphql-transport-ws)",
            extensions={"code": "INVALID_REQUEST"},
        )
    session: LiveSession = context.live
    return session


async def _subscribe(
    context: Context, instance_id: str, wants: Wants
) -> tuple[LiveSession, Subscriber]:
    live = _session(context)
    with bad_arguments_as_graphql_errors():
        subscriber = await live.hub.subscribe(
            context.principal.key_id, parse_instance_id(instance_id), wants, live.close
        )
    return live, subscriber


async def instance_activity(
    context: Context, instance_id: str, after: str | None
) -> AsyncGenerator[LiveActivity, None]:
    start: Position | None = None
    if after is not None:
        with bad_arguments_as_graphql_errors():
            async with context.engine.connect() as connection:
                start = await position_after(connection, parse_instance_id(instance_id), after)
    live, subscriber = await _subscribe(context, instance_id, "activity")
    messages = _Messages(context)
    try:
        if start is not None:
            # Registered first: whatever commits during the replay is queued, and skipped
            # there when the replay already delivered it.
            subscriber.position = start
            while loaded := (await live.hub.replay(subscriber.instance_id, start)).items:
                for item in loaded:
                    start = subscriber.position = item.position
                    await messages.next(item)
                    yield item
        while True:
            item: Any = await subscriber.queue.get()
            if subscriber.skip(item) or await live.sent_as_shared(item):
                continue
            await messages.next(item)
            yield item
    finally:
        live.hub.unsubscribe(subscriber)
        await messages.close()


async def instance_status(context: Context, instance_id: str) -> AsyncGenerator[Any, None]:
    live, subscriber = await _subscribe(context, instance_id, "status")
    messages = _Messages(context)
    try:
        await messages.next(None)
        yield await context.loaders.instance_by_id.load(subscriber.instance_id)
        while True:
            snapshot: InstanceSnapshot = await subscriber.queue.get()
            if await live.sent_as_shared(snapshot.instance):
                continue
            await messages.next(snapshot)
            yield snapshot.instance
    finally:
        live.hub.unsubscribe(subscriber)
        await messages.close()
