"""A graphql-transport-ws client over a real socket (the ``websockets`` library), for tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

WAIT_S = 10.0
"""A bound against a hang, never a timing assertion."""

ACTIVITY = """
subscription Activity($id: ID!, $after: ID) {
  instanceActivity(instanceId: $id, after: $after) {
    cursor kind at enrollmentStatus
    enrollment { id status }
    event { id eventType }
    dispatch { id status }
    metrics { enrolled delivered opened replied }
  }
}
"""
STATUS = """
subscription Status($id: ID!) {
  instanceStatus(instanceId: $id) { id status metrics { opened replied } }
}
"""


class Socket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = 0

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def raw(self) -> str:
        """The next message as the server wrote it."""
        message = await asyncio.wait_for(self.connection.recv(), WAIT_S)
        return message if isinstance(message, str) else message.decode()

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.connection.recv(), WAIT_S))
        return message

    async def subscribe(self, query: str, **variables: Any) -> str:
        self._ids += 1
        operation_id = str(self._ids)
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables},
            }
        )
        return operation_id

    async def next_data(self) -> dict[str, Any]:
        """The next ``next`` message's data (fails on anything else)."""
        message = await self.receive()
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def errors_of(self, operation_id: str) -> list[dict[str, Any]]:
        """The errors the server answered operation ``operation_id`` with (an ``error``
        message, or a ``next`` carrying errors); other operations' completions are skipped."""
        while True:
            message = await self.receive()
            if message.get("id") != operation_id or message["type"] == "complete":
                continue
            if message["type"] == "error":
                errors: list[dict[str, Any]] = message["payload"]
                return errors
            assert message["type"] == "next", message
            assert message["payload"].get("errors"), message
            return list(message["payload"]["errors"])

    async def activity(self, count: int) -> list[dict[str, Any]]:
        return [(await self.next_data())["instanceActivity"] for _ in range(count)]

    async def closed_with(self) -> tuple[int | None, str | None]:
        """Wait until the server closes; its close code and reason."""
        try:
            while True:
                await asyncio.wait_for(self.connection.recv(), WAIT_S)
        except websockets.ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, None)


async def until(predicate: Any) -> None:
    """Wait for ``predicate()`` (a bound against a hang, not a timing assertion)."""
    for _ in range(int(WAIT_S / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never came to pass")


async def registered(hub: Any, instance_id: str, count: int) -> None:
    """Wait until the server's hub holds ``count`` subscribers of the instance: a subscription
    without ``after`` starts from what commits after that."""
    await until(lambda: hub.subscribers_of(instance_id) == count)


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def connect(
    base: str, key: str | None = None, *, init: bool = True, **connect_options: Any
) -> AsyncIterator[Socket]:
    """A connection to ``base``'s /graphql; with ``key`` sent on the upgrade request, and
    ``connection_init`` already acknowledged unless ``init`` is false."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with websockets.connect(
        ws_url(base),
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=WAIT_S,
        **connect_options,
    ) as connection:
        socket = Socket(connection)
        if init:
            assert (await socket.init())["type"] == "connection_ack"
        yield socket
