"""A response's head and body leave in one write; nothing is ever held back or reordered."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from app.settings import Settings
from app.web.one_write_http import HeadHoldingTransport, OneWriteHttpToolsProtocol
from tests.live_server import serving_with

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording:
    """Stands in for the socket's transport: what the server would send, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def holding() -> tuple[HeadHoldingTransport, Recording]:
    recording = Recording()
    return HeadHoldingTransport(recording, asyncio.get_running_loop()), recording  # type: ignore[arg-type]


async def test_head_and_body_leave_in_one_write() -> None:
    transport, recording = holding()
    transport.write(HEAD)
    assert recording.writes == []
    transport.write(b"{}")
    assert recording.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert recording.writes == [HEAD + b"{}"]


async def test_a_head_without_a_body_leaves_on_the_next_turn_of_the_loop() -> None:
    transport, recording = holding()
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert recording.writes == [HEAD]


async def test_closing_sends_what_is_held_first() -> None:
    transport, recording = holding()
    transport.write(HEAD)
    transport.close()
    assert recording.writes == [HEAD]
    assert recording.closed


async def test_an_interim_answer_passes_straight_through() -> None:
    """A client that sent ``Expect: 100-continue`` waits for it before sending the body."""
    transport, recording = holding()
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    transport.write(interim)
    assert recording.writes == [interim]
    refusal = b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 2\r\n\r\n"
    transport.write(refusal)
    transport.write(b"{}")
    assert recording.writes == [interim, refusal + b"{}"]


async def test_other_transport_calls_reach_the_transport() -> None:
    transport, _ = holding()
    assert transport.get_extra_info("peername") == "info:peername"


async def test_the_server_answers_through_the_head_holding_transport(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        serving_with(app, settings, monkeypatch) as (base, server),
        httpx.AsyncClient(base_url=base) as client,
    ):
        response = await client.get("/healthz")  # the connection stays open: keep-alive
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        connections = list(server.server_state.connections)
        assert connections
        assert all(isinstance(c, OneWriteHttpToolsProtocol) for c in connections)
        assert all(isinstance(c.transport, HeadHoldingTransport) for c in connections)
