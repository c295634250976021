"""The server's own bounds on connections, against a real uvicorn configured as ``serve`` runs it:
slow, idle and huge request heads, stalled bodies and too many connections are cut, while a
normal client is served meanwhile. The limits are made small here so that it all takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from app.settings import Settings
from tests.live_server import serving

HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 1.5
LIMITS: dict[str, Any] = {
    "header_timeout_s": HEADER_TIMEOUT_S,
    "body_timeout_s": BODY_TIMEOUT_S,
    "max_header_bytes": 8 * 1024,
    "max_headers": 40,
    "max_connections": 12,
}
CUT_WITHIN_S = 6.0
"""Far beyond every timeout above: a connection still open after this was never cut."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    after_s: float


@asynccontextmanager
async def limited_server(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, int]]:
    async with serving(app, settings.model_copy(update=LIMITS), monkeypatch) as base:
        parts = urlsplit(base)
        assert parts.hostname is not None
        assert parts.port is not None
        yield parts.hostname, parts.port


async def answer_then_close(reader: asyncio.StreamReader, began: float) -> Answer:
    """What the server says before it closes the connection (it must close it)."""
    raw = await asyncio.wait_for(reader.read(), CUT_WITHIN_S)
    after = time.monotonic() - began
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, json.loads(body), after)


async def normal_client_is_served(base: str, times: int = 3) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        for _ in range(times):
            response = await client.get("/healthz")
            assert response.status_code == 200


async def drip(writer: asyncio.StreamWriter, piece: bytes, every_s: float) -> None:
    """Send ``piece`` again and again, slowly, until the server closes the connection."""
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(every_s)


async def test_slow_and_idle_heads_are_cut_while_a_client_is_served(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with limited_server(app, settings, monkeypatch) as (host, port):
        began = time.monotonic()
        slow = [await asyncio.open_connection(host, port) for _ in range(3)]
        idle = [await asyncio.open_connection(host, port) for _ in range(2)]
        drips = []
        for _, writer in slow:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            drips.append(asyncio.create_task(drip(writer, b"X-Slow: 1\r\n", 0.1)))

        await normal_client_is_served(f"http://{host}:{port}")
        assert time.monotonic() - began < HEADER_TIMEOUT_S, "served only after the cut"

        for reader, writer in [*slow, *idle]:
            answer = await answer_then_close(reader, began)
            assert answer.status == 408
            assert answer.body["error"] == "REQUEST_TIMEOUT"
            assert answer.body["message"] == "the request head did not arrive within 1.5 s"
            assert HEADER_TIMEOUT_S <= answer.after_s < CUT_WITHIN_S
            writer.close()
        await asyncio.gather(*drips)


async def test_huge_heads_are_refused_with_431(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with limited_server(app, settings, monkeypatch) as (host, port):
        began = time.monotonic()
        # Many small header fields, the whole head in one write.
        reader, writer = await asyncio.open_connection(host, port)
        fields = b"".join(b"X-Many-%d: v\r\n" % n for n in range(41))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + fields + b"\r\n")
        answer = await answer_then_close(reader, began)
        assert (answer.status, answer.body["error"]) == (431, "HEADERS_TOO_LARGE")
        assert answer.body["message"] == "the request has more than 40 header fields"
        writer.close()

        # One field just over the byte limit, complete in one write.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        answer = await answer_then_close(reader, began)
        assert (answer.status, answer.body["error"]) == (431, "HEADERS_TOO_LARGE")
        assert answer.body["message"] == "the request head exceeds 8192 bytes"
        writer.close()

        # A head that never ends: cut once past the limit, long before 64 MB were taken in.
        reader, writer = await asyncio.open_connection(host, port)
        sent = 0
        refusal = asyncio.create_task(answer_then_close(reader, began))
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Huge: ")
            while sent < 64 * 1024 * 1024 and not refusal.done():
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
                await asyncio.sleep(0)
            await normal_client_is_served(f"http://{host}:{port}", times=1)
        answer = await refusal
        assert (answer.status, answer.body["error"]) == (431, "HEADERS_TOO_LARGE")
        assert sent < 64 * 1024 * 1024
        writer.close()

        await normal_client_is_served(f"http://{host}:{port}")


async def test_stalled_and_dripping_bodies_are_cut_with_408(
    app: Starlette, settings: Settings, read_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = json.dumps({"query": "{ __typename }"}).encode()
    async with limited_server(app, settings, monkeypatch) as (host, port):
        began = time.monotonic()
        head = (
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + read_key.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(query)
        )
        stalled_reader, stalled = await asyncio.open_connection(host, port)
        stalled.write(head + query[:5])
        dripping_reader, dripping = await asyncio.open_connection(host, port)
        dripping.write(head)
        dripper = asyncio.create_task(drip(dripping, b" ", 0.1))

        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client:
            response = await client.post(
                "/graphql",
                content=query,
                headers={"authorization": f"Bearer {read_key}", "content-type": "application/json"},
            )
            assert response.status_code == 200
            assert response.json() == {"data": {"__typename": "Query"}}
        assert time.monotonic() - began < BODY_TIMEOUT_S, "served only after the cut"

        for reader, writer in ((stalled_reader, stalled), (dripping_reader, dripping)):
            answer = await answer_then_close(reader, began)
            assert (answer.status, answer.body["error"]) == (408, "REQUEST_TIMEOUT")
            assert answer.body["message"] == "the request body did not arrive within 1.5 s"
            assert BODY_TIMEOUT_S <= answer.after_s < CUT_WITHIN_S
            writer.close()
        await dripper

        # Answered (401, no key) before its body came: a body still dripping is cut all the same,
        # with nothing said after the 401.
        began = time.monotonic()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head.replace(b"Authorization: Bearer " + read_key.encode() + b"\r\n", b""))
        dripper = asyncio.create_task(drip(writer, b" ", 0.1))
        answer = await answer_then_close(reader, began)
        assert (answer.status, answer.body["error"]) == (401, "UNAUTHENTICATED")
        assert BODY_TIMEOUT_S <= answer.after_s < CUT_WITHIN_S
        writer.close()
        await dripper


async def test_connections_over_the_cap_are_refused_until_the_idle_ones_are_cut(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with limited_server(app, settings, monkeypatch) as (host, port):
        began = time.monotonic()
        held = [await asyncio.open_connection(host, port) for _ in range(LIMITS["max_connections"])]
        await asyncio.sleep(0.1)  # the server has taken them all in

        reader, writer = await asyncio.open_connection(host, port)
        answer = await answer_then_close(reader, began)
        assert (answer.status, answer.body["error"]) == (503, "TOO_MANY_CONNECTIONS")
        assert answer.headers["retry-after"] == "1"
        assert answer.after_s < HEADER_TIMEOUT_S, "refused at once, not when the others left"
        writer.close()

        for reader, writer in held:
            assert (await answer_then_close(reader, began)).status == 408
            writer.close()
        await normal_client_is_served(f"http://{host}:{port}")
