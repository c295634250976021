"""uvicorn's HTTP/1.1 protocol (httptools) with the bounds a server facing clients needs.

As uvicorn runs it, a request head may be any size (llhttp sets no limit: 100 MB of headers
were answered 200), a connection that sends a head slowly, or nothing at all, is held forever,
and so is a request whose body stops arriving; uvicorn's only read timer is the keep-alive one,
armed after a response and cancelled by the next byte. Here each connection is bounded itself:

- its head (request line and header fields) gets ``max_header_bytes`` and ``max_headers``, else
  431, and must arrive within ``header_timeout_s`` of the connection or of its first byte;
- its body must be complete within ``body_timeout_s`` of the head, else 408;
- a process holds at most ``max_connections``; one more is answered 503 and closed at once.

A refused connection gets a JSON body like every other error and is closed. uvicorn has no
public hook for any of this, so this subclass uses its protocol's internals (uvicorn is pinned
exactly; ``tests/test_private_apis.py`` checks what is used).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.observability.logs import get_logger
from app.settings import Settings

log = get_logger("http")

HEADER_LINE_OVERHEAD = len(": \r\n")
LINGER_S = 1.0
"""How long a refused connection's further input is read and dropped before it is closed."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
        )


def guarded_protocol(settings: Settings) -> Callable[..., asyncio.Protocol]:
    """What uvicorn's ``http`` option takes: a protocol factory. A partial of a module-level
    class pickles, so it reaches the worker processes of ``serve --workers N`` too."""
    return functools.partial(GuardedHttpProtocol, limits=HttpLimits.from_settings(settings))


def _error_bytes(status: int, code: str, message: str, headers: dict[str, str]) -> bytes:
    """A whole response, written before (or instead of) the application's."""
    body = json.dumps({"error": code, "message": message}).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _refusing_app(status: int, code: str, message: str) -> Callable[..., Any]:
    """An ASGI app answering one refusal: run in the request's place by uvicorn's own cycle,
    which also drains or drops whatever body follows and closes the connection."""
    body = json.dumps({"error": code, "message": message}).encode()

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return refuse


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_received = 0
        """Bytes received while this head is incomplete: bounds what the parser buffers."""
        self._head_size = 0
        """The request line and header fields as parsed: the exact size once complete."""
        self._header_count = 0
        self._lingering = False

    # --- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                503,
                "TOO_MANY_CONNECTIONS",
                f"this server holds at most {self.limits.max_connections} connections; "
                "retry shortly",
                {"retry-after": "1"},
            )
            return
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._deadline is None and not self._in_head:
            # The first bytes after a response (or while the application works): a new head.
            self._start_head()
        counting = self._in_head
        super().data_received(data)
        if counting and self._in_head and not self.transport.is_closing():
            self._head_received += len(data)
            problem = self._head_problem(self._head_received)
            if problem is not None:
                self._refuse(431, "HEADERS_TOO_LARGE", problem)

    # --- the parser's callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._start_head()
        self._head_size = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._header_count += 1
        self._head_size += len(name) + len(value) + HEADER_LINE_OVERHEAD

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_deadline()
        problem = self._head_problem(self._head_size)
        if problem is not None:
            log.warning("request_refused", reason="HEADERS_TOO_LARGE", detail=problem)
            self.app, app = _refusing_app(431, "HEADERS_TOO_LARGE", problem), self.app
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        self._arm(self.limits.body_timeout_s, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body was in (a 401, a 413): uvicorn's keep-alive timer ran
            # and was cancelled by that body's bytes; the next head gets a deadline instead.
            self._start_head()

    # --- deadlines and refusals -----------------------------------------------------------

    def _start_head(self) -> None:
        self._in_head = True
        self._head_received = 0
        self._cancel_deadline()
        self._arm(self.limits.header_timeout_s, "head")

    def _arm(self, seconds: float, part: str) -> None:
        self._deadline = self.loop.call_later(seconds, self._expire, part, seconds)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_problem(self, size: int) -> str | None:
        if self._header_count > self.limits.max_headers:
            return f"the request has more than {self.limits.max_headers} header fields"
        if size > self.limits.max_header_bytes:
            return f"the request head exceeds {self.limits.max_header_bytes} bytes"
        return None

    def _expire(self, part: str, seconds: float) -> None:
        self._deadline = None
        if (
            self._lingering
            or self.transport.is_closing()
            or self.transport.get_protocol() is not self
        ):
            return  # refused or closed meanwhile, or handed over to a WebSocket protocol
        self._refuse(
            408, "REQUEST_TIMEOUT", f"the request {part} did not arrive within {seconds:g} s"
        )

    def _refuse(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` unless another answer is under way on this connection (a
        pipelined request's, or this request's own), then close it."""
        log.warning("request_refused", reason=code, detail=message)
        self._cancel_deadline()
        cycle = self.cycle
        if (
            cycle is None
            or cycle.response_complete
            or (not self._in_head and not cycle.response_started)
        ):
            self.transport.write(_error_bytes(status, code, message, headers or {}))
        if cycle is not None and not cycle.response_complete:
            # What the application sends from now on goes nowhere; its receive() returns.
            cycle.disconnected = True
            cycle.message_event.set()
        self._linger()

    def _linger(self) -> None:
        """Close after the answer, but not at once: closing with input unread makes the kernel
        reset the connection, and a client still sending would lose the answer to the reset.
        So send FIN after it, drop what still comes for ``LINGER_S``, then close."""
        self._lingering = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)
