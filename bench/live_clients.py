"""The clients of ``bench.live_updates``: keep-alive HTTP connections that post webhooks, and
graphql-transport-ws subscribers that store each message unparsed with its arrival time (the
client shares the cores with the servers, so it does as little as it can per message)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from testkit.servers import Served

QUERY = (
    "subscription Activity($instanceId: ID!) {"
    " instanceActivity(instanceId: $instanceId) { cursor kind event { id eventType } } }"
)
# Events that change no enrollment's status: every round finds the same work to do (a reply
# or a bounce would finish its enrollment, and later events on it would cost less).
EVENT_TYPES = ("delivered", "opened", "clicked")


def event_body(enrollment: str, provider_event_id: str) -> dict[str, object]:
    return {
        "enrollment_id": enrollment,
        "event_type": random.choice(EVENT_TYPES),
        "provider": "api",
        "provider_event_id": provider_event_id,
        "step_number": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "metadata": {"source": "bench.live_updates"},
    }


class HttpPool:
    """Keep-alive HTTP/1.1 POSTs to one server over asyncio streams: an HTTP library would
    spend more of the shared cores per request than the server spends answering it."""

    def __init__(self, port: int, key: str, connections: int = 128):
        self.port = port
        # An overloaded server must not be answered by an ever-growing number of connections
        # (its accept backlog would reset them): beyond this many, requests wait their turn.
        self.slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._head = (
            "POST /webhooks/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Status and body of one POST of ``body``."""
        async with self.slots:
            return await self.post_holding_slot(body)

    async def post_holding_slot(self, body: bytes) -> tuple[int, bytes]:
        """``post`` for a caller that holds one of ``slots`` already."""
        while self._idle:
            reader, writer = self._idle.pop()
            writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            try:
                status_line = await reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            writer.close()  # the server closed it while idle (its keep-alive timeout)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status_line = await reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        self._idle.append((reader, writer))
        return status, answer

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


@dataclass(eq=False)
class Subscriber:
    """One WebSocket, one subscription; stores (time received, raw message) while ``keep``,
    parsing only the rare messages that are not ``next`` while it runs."""

    server: int
    instance: str
    keep: bool = False
    received: int = 0
    messages: list[tuple[float, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    close_code: int | None = None
    closing: bool = False
    socket: ClientConnection | None = None
    task: asyncio.Task[None] | None = None

    async def open(self, url: str, key: str) -> None:
        self.socket = await connect(
            f"{url}/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
            compression=None,
            ping_interval=None,
            max_queue=None,
            open_timeout=60,
        )
        await self.socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        ack = json.loads(await asyncio.wait_for(self.socket.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        await self.socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"instanceId": self.instance}},
                }
            )
        )
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        socket = self.socket
        assert socket is not None
        try:
            async for message in socket:
                now = time.perf_counter()
                self.received += 1
                if self.keep:
                    self.messages.append((now, str(message)))
                if '"next"' not in message:
                    parsed = json.loads(message)
                    if parsed.get("type") == "ping":
                        await socket.send('{"type":"pong"}')
                    else:
                        self.other.append(str(message))
        except ConnectionClosed:
            pass
        if not self.closing:  # the server closed it
            self.close_code = socket.close_code

    async def close(self) -> None:
        self.closing = True
        if self.socket is not None:
            await self.socket.close()
        if self.task is not None:
            await self.task


class Subscribers:
    """``count`` subscribers, as many per instance, each instance's half on each server."""

    def __init__(self, servers: Sequence[Served], instances: Sequence[str], count: int):
        per_instance = count // len(instances)
        self.servers = servers
        self.all = [
            Subscriber(server=n % len(servers), instance=instance)
            for instance in instances
            for n in range(per_instance)
        ]

    async def open(self, key: str, pools: Sequence[HttpPool], enrollments: dict[str, list[str]]):
        """Connect and subscribe every one (50 at a time), then post one event per instance
        until each subscriber has received one: subscribed means receiving, not just sent."""
        gate = asyncio.Semaphore(50)

        async def one(subscriber: Subscriber) -> None:
            async with gate:
                await subscriber.open(self.servers[subscriber.server].ws, key)

        await asyncio.gather(*(one(s) for s in self.all))
        for attempt in range(5):
            waiting = {s.instance for s in self.all if not s.received}
            if not waiting:
                break
            await asyncio.gather(
                *(
                    pools[n % len(pools)].post(
                        json.dumps(
                            event_body(enrollments[instance][0], f"warmup-{uuid.uuid4().hex}")
                        ).encode()
                    )
                    for n, instance in enumerate(sorted(waiting))
                )
            )
            deadline = time.monotonic() + 10 * (attempt + 1)
            while time.monotonic() < deadline:
                if all(s.received for s in self.all):
                    break
                await asyncio.sleep(0.1)
        silent = sum(not s.received for s in self.all)
        if silent:
            raise RuntimeError(
                f"{silent} subscribers received nothing; their other messages:"
                f" {[s.other[:2] for s in self.all if not s.received][:3]}"
            )
        # The last warm-up deliveries arrive before anyone counts: quiet for a second.
        last, deadline = -1, time.monotonic() + 15
        while self.received != last and time.monotonic() < deadline:
            last = self.received
            await asyncio.sleep(1)

    def keep(self) -> None:
        for subscriber in self.all:
            subscriber.keep, subscriber.messages = True, []

    @property
    def received(self) -> int:
        return sum(s.received for s in self.all)

    def closed_by_server(self) -> Counter[int]:
        return Counter(s.close_code for s in self.all if s.close_code is not None)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.all), return_exceptions=True)
