"""GraphQL subscriptions over WebSocket (graphql-transport-ws) at /graphql.

The API key comes from the upgrade request (``Authorization: Bearer …`` or ``X-API-Key``) or,
for browsers that cannot set headers on a WebSocket, from the ``connection_init`` payload as
``{"Authorization": "Bearer …"}``. A key sent on the upgrade that does not verify is refused
at the handshake (HTTP 403); one sent in ``connection_init`` closes the socket with 4403.
Each ``subscribe`` spends a token of the key's request rate limit, and goes through the same
document limits and error masking as a query. Every operation gets its own context (its
messages get fresh loaders); the process's hub feeds the subscriptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from contextlib import aclosing, suppress
from datetime import timedelta
from functools import partial
from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    SubscribeMessage,
)

from app.security.api_keys import Principal, looks_like_key
from app.settings import Settings
from app.web.auth import principal_for, principal_for_key, unauthenticated
from app.web.errors import Refused
from app.web.limits import failed_authentication, limiter, spend
from resolvers.context import Context
from resolvers.loaders import RequestDatabase
from resolvers.shared_events import share_key
from resolvers.subscriptions import LiveSession


class _Handler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's protocol handler, with our rate limit, per-operation contexts and a way
    for the hub to close the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closing: set[asyncio.Task[None]] = set()
        hub = self.context.request_state["connection"].app.state.live_hub
        self.context.live = LiveSession(hub, self._close)

    def _close(self, code: int, reason: str) -> None:
        task = asyncio.create_task(self._close_now(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_now(self, code: int, reason: str) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with suppress(RuntimeError, OSError):
            await self.websocket.close(code=code, reason=reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged:
            try:
                await spend(limiter(self.context.request_state["connection"]).requests, self._key())
            except Refused as refusal:
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [
                            {"message": refusal.message, "extensions": {"code": refusal.code}}
                        ],
                    }
                )
                return
        await super().handle_subscribe(message)

    def _key(self) -> Any:
        principal: Principal = self.context.principal
        return principal.key_id

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's, run with the operation's own context: concurrent operations of one
        connection must not share loaders or a read connection. The context's live session
        carries the operation's share key (resolvers/shared_events.py)."""
        principal: Principal = self.context.principal
        live = dataclasses.replace(
            self.context.live,
            share_key=share_key(
                operation.query, operation.operation_name, operation.variables, principal.scopes
            ),
            send_payload=partial(self._send_payload, operation),
        )
        context = dataclasses.replace(
            self.context, db=RequestDatabase(self.context.engine), live=live
        )
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=None,
                operation_name=operation.operation_name,
            )
            async with aclosing(source):
                await self._send_result_stream(operation, source)
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
        finally:
            await context.db.close()

    async def _send_payload(self, operation: Operation[Context, None], payload: str) -> None:
        await operation.send_operation_message(
            {"id": operation.id, "type": "next", "payload": _Encoded(payload)}  # type: ignore[typeddict-item]
        )


class _Encoded(str):
    """A ``next`` payload already encoded (the same bytes Strawberry would write)."""


class _View(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _Handler

    def encode_json(self, data: object) -> str | bytes:
        """Strawberry's encoding, with payloads encoded once for all their subscribers
        written as they are."""
        if isinstance(data, dict) and isinstance(data.get("payload"), _Encoded):
            return f'{{"id":{json.dumps(data["id"])},"type":"next","payload":{data["payload"]}}}'
        return super().encode_json(data)

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.live_connection_init_timeout_s),
            max_subscriptions_per_connection=settings.live_subscriptions_per_connection,
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.app.state
        return Context(
            settings=state.settings,
            engine=state.engine,
            sessionmaker=state.sessionmaker,
            principal=request.scope["state"].get("principal"),
            db=RequestDatabase(state.engine),
            request_state={"connection": request},
        )

    async def on_ws_connect(self, context: Context) -> None:
        """Authenticate from ``connection_init`` unless the upgrade request already did."""
        if context.principal is not None:
            return
        connection = context.request_state["connection"]
        params = context.connection_params or {}
        header = params.get("Authorization") if isinstance(params, dict) else None
        scheme, _, token = header.partition(" ") if isinstance(header, str) else ("", "", "")
        key = token.strip() if scheme.lower() == "bearer" else ""
        principal = await principal_for_key(connection, key) if looks_like_key(key) else None
        if principal is None:
            await failed_authentication(connection, unauthenticated(connection))
            raise ConnectionRejectionError
        context.principal = principal


class GraphQLWebSocket:
    """The WebSocket side of /graphql; refuses at the handshake a key that does not verify."""

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        self._view = _View(schema, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        principal = await principal_for(websocket)
        if principal is None and _sent_key(websocket):
            await failed_authentication(websocket, unauthenticated(websocket))  # type: ignore[arg-type]
            await websocket.close(code=1008)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self._view(scope, receive, send)


def _sent_key(websocket: WebSocket) -> bool:
    return bool(websocket.headers.get("authorization") or websocket.headers.get("x-api-key"))
