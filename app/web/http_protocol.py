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
import enum
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


class Reading(enum.Enum):
    HEAD = "head"
    BODY = "body"
    NOTHING = "nothing"
    """Between requests, or while the application answers one whose body is in."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """Deadlines are armed lazily: only when a chunk of input leaves a head or a body
    incomplete, so the usual request, whole in one chunk, costs no timer at all."""

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
        self._reading = Reading.NOTHING
        self._since = 0.0
        """When the head or body being read began (the loop's clock)."""
        self._deadline: asyncio.TimerHandle | None = None
        self._head_received = 0
        """Bytes received in earlier chunks of the head being read."""
        self._chunk = 0
        self._parts = 0
        """How many heads and bodies this connection has begun reading."""
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
        self._read(Reading.HEAD)  # a connection that sends nothing times out as a slow head
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._reading is Reading.NOTHING:
            self._read(Reading.HEAD)  # the first bytes of the next request
        head = self._parts if self._reading is Reading.HEAD else None
        self._chunk = len(data)
        super().data_received(data)
        if self.transport.is_closing() or self._lingering:
            return
        if self._parts == head:  # still the head this chunk began in
            self._head_received += len(data)
            problem = self._head_problem(self._head_received, len(self.headers or ()))
            if problem is not None:
                self._refuse(431, "HEADERS_TOO_LARGE", problem)
                return
        if self._reading is not Reading.NOTHING and self._deadline is None:
            self._arm()

    # --- the parser's callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._reading is not Reading.HEAD:  # a pipelined request, right after the last one
            self._read(Reading.HEAD)

    def on_headers_complete(self) -> None:
        problem = self._complete_head_problem()
        self._read(Reading.BODY)
        if problem is not None:
            log.warning("request_refused", reason="HEADERS_TOO_LARGE", detail=problem)
            self.app, app = _refusing_app(431, "HEADERS_TOO_LARGE", problem), self.app
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._read(Reading.NOTHING)
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body was in (a 401, a 413): uvicorn's keep-alive timer ran
            # and was cancelled by that body's bytes, so the next head is timed from now.
            self._read(Reading.HEAD)

    # --- deadlines and refusals -----------------------------------------------------------

    def _read(self, part: Reading) -> None:
        self._cancel_deadline()
        self._reading = part
        self._parts += 1
        self._since = self.loop.time()
        self._head_received = 0

    def _arm(self) -> None:
        part = self._reading
        seconds = (
            self.limits.header_timeout_s if part is Reading.HEAD else self.limits.body_timeout_s
        )
        self._deadline = self.loop.call_at(self._since + seconds, self._expire, part, seconds)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_problem(self, size: int, fields: int) -> str | None:
        if fields > self.limits.max_headers:
            return f"the request has more than {self.limits.max_headers} header fields"
        if size > self.limits.max_header_bytes:
            return f"the request head exceeds {self.limits.max_header_bytes} bytes"
        return None

    def _complete_head_problem(self) -> str | None:
        """The head just parsed, measured exactly only when the bytes received could exceed
        the limit (they include this chunk's body, if any)."""
        if self._head_received + self._chunk <= self.limits.max_header_bytes:
            return self._head_problem(0, len(self.headers))
        size = len(self.url) + sum(
            len(name) + len(value) + HEADER_LINE_OVERHEAD for name, value in self.headers
        )
        return self._head_problem(size, len(self.headers))

    def _expire(self, part: Reading, seconds: float) -> None:
        self._deadline = None
        if (
            self._lingering
            or self.transport.is_closing()
            or self.transport.get_protocol() is not self
        ):
            return  # refused or closed meanwhile, or handed over to a WebSocket protocol
        self._refuse(
            408,
            "REQUEST_TIMEOUT",
            f"the request {part.value} did not arrive within {seconds:g} s",
        )

    def _refuse(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` unless this request's answer has begun (the application answered
        before the body came) or another is under way (a pipelined request's), then close."""
        log.warning("request_refused", reason=code, detail=message)
        self._cancel_deadline()
        cycle = self.cycle
        if self._reading is Reading.BODY:
            answer = cycle is not None and not cycle.response_started
        else:
            answer = cycle is None or cycle.response_complete
        if answer:
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
