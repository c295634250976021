"""Run every GraphQL query of the suite through both executors and compare the responses.

The app under test runs queries on the fast path (resolvers/fast_execution); a reference app
on the same database runs them on Strawberry's standard executor. Response bodies must be
byte-identical: data, errors with paths and extensions, and key order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError, OperationType, parse
from graphql.language import OperationDefinitionNode
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Mismatch:
    request: bytes
    fast: bytes
    standard: bytes


def is_query(body: bytes) -> bool:
    """Whether a POSTed GraphQL body asks for a query operation (mutations run once)."""
    try:
        payload = json.loads(body)
        document = parse(payload["query"])
    except (ValueError, KeyError, TypeError, GraphQLError):
        return False
    name = payload.get("operationName")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if name is None or (o.name and o.name.value == name)]
    return len(chosen) == 1 and chosen[0].operation is OperationType.QUERY


async def _call(app: ASGIApp, scope: Scope, body: bytes) -> tuple[int, list[Any], bytes]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status, headers, chunks = 500, [], []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    own_scope = dict(scope)
    own_scope["state"] = dict(scope.get("state") or {})
    await app(own_scope, receive, send)
    return status, headers, b"".join(chunks)


@dataclass
class DifferentialApp:
    """ASGI wrapper: answers with the app under test, and checks queries against a reference.

    A request that overlaps another is not compared: a concurrent write could change the
    data between the two executions.
    """

    app: ASGIApp
    reference: ASGIApp
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    _active: set[int] = field(default_factory=set)
    _overlapped: set[int] = field(default_factory=set)
    _next_id: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/graphql"
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        self._next_id += 1
        me = self._next_id
        if self._active:
            self._overlapped.update(self._active | {me})
        self._active.add(me)
        try:
            status, headers, fast = await _call(self.app, scope, body)
        finally:
            self._active.discard(me)
        overlapped = me in self._overlapped or bool(self._active)
        self._overlapped.discard(me)
        if status == 200 and not overlapped and is_query(body):
            _, _, standard = await _call(self.reference, scope, body)
            self.compared += 1
            if standard != fast:
                self.mismatches.append(Mismatch(body, fast, standard))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": fast})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
