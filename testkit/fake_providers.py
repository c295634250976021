"""Postmark, PhantomBuster and lemlist as real HTTP servers on loopback, for the sender's tests
and benchmarks.

One asyncio server speaks HTTP/1.1 (with h11, keep-alive included) and answers as the three
providers' APIs do: ``POST /email`` and ``/email/batch`` and the outbound message search
(Postmark), ``POST /api/v2/agents/launch`` (PhantomBuster), ``POST /api/campaigns/{id}/leads/``
(lemlist). Everything a request carried is recorded, so a test counts at the provider what the
sender delivered.

A test scripts misbehaviour with ``FakeProviders.script``: a function that sees each message
(one per Postmark message, one per launch or lead) and answers with a ``Reply``: added
latency, a 429 with ``Retry-After``, a 5xx, a 4xx with a provider error code, or ``drop``: the
message is taken (it counts as delivered, and Postmark's search finds it) but the connection
is closed before any answer, as when an answer is lost on the way back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

POSTMARK_TOKEN = "pm-server-token-for-tests"
PHANTOMBUSTER_KEY = "pb-api-key-for-tests"
LEMLIST_KEY = "lemlist-api-key-for-tests"


@dataclass(frozen=True, slots=True)
class Reply:
    """How the fake answers one message. ``status`` 200 means taken."""

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    drop: bool = False
    """Take the message, then close the connection without answering."""

    @classmethod
    def taken(cls, delay_s: float = 0.0) -> Reply:
        return cls(delay_s=delay_s)

    @classmethod
    def too_many(cls, retry_after: int) -> Reply:
        return cls(
            429,
            {"ErrorCode": 429, "Message": "Rate limit exceeded"},
            (("Retry-After", str(retry_after)),),
        )

    @classmethod
    def server_error(cls) -> Reply:
        return cls(500, {"ErrorCode": 500, "Message": "Internal server error"})

    @classmethod
    def dropped(cls) -> Reply:
        return cls(drop=True)


@dataclass(frozen=True, slots=True)
class Message:
    """One message a provider received: what it was, and what the fake did with it."""

    provider: str
    dispatch_id: str | None
    enrollment_id: str | None
    step_number: int | None
    payload: dict[str, Any]
    taken: bool
    message_id: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as it arrived: for tests of what a client puts on the wire."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-cased names."""
    payload: Any


Script = Callable[[str, dict[str, Any]], Reply]


def _always_taken(provider: str, payload: dict[str, Any]) -> Reply:
    return Reply.taken()


@dataclass
class FakeProviders:
    latency_s: float = 0.0
    script: Script = _always_taken
    base_url: str = ""
    received: list[Message] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    auth_failures: int = 0
    _server: asyncio.Server | None = None
    _leads: dict[tuple[str, str], str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.transport.abort()
            await self._server.wait_closed()

    # -- what arrived --------------------------------------------------------------------

    def taken(self, provider: str | None = None) -> list[Message]:
        return [m for m in self.received if m.taken and provider in (None, m.provider)]

    def taken_by_dispatch(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for message in self.taken():
            counts[message.dispatch_id or ""] += 1
        return dict(counts)

    # -- HTTP ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read(connection, reader)
                if request is None:
                    return
                status, answer, headers, drop = await self._answer(request, body)
                if drop:
                    writer.transport.abort()
                    return
                data = json.dumps(answer).encode()
                response = h11.Response(
                    status_code=status,
                    headers=[
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(data))),
                        *headers,
                    ],
                )
                writer.write(connection.send(response))
                writer.write(connection.send(h11.Data(data=data)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
                if connection.our_state is h11.MUST_CLOSE:
                    return
                connection.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError):
            return
        finally:
            self._open.discard(writer)
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.close()

    async def _read(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                connection.receive_data(chunk)
                if not chunk and connection.their_state is h11.IDLE:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _answer(
        self, request: h11.Request, body: bytes
    ) -> tuple[int, Any, list[tuple[str, str]], bool]:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        target = urlsplit(request.target.decode())
        path = target.path
        payload = json.loads(body) if body else None
        self.requests.append(
            Request(request.method.decode(), path, parse_qs(target.query), headers, payload)
        )
        if path.startswith("/messages/outbound"):
            return self._search(headers, parse_qs(target.query))
        if path in ("/email", "/email/batch"):
            if headers.get("x-postmark-server-token") != POSTMARK_TOKEN:
                self.auth_failures += 1
                return 401, {"ErrorCode": 10, "Message": "Bad or missing API token"}, [], False
            return await self._postmark(path == "/email/batch", payload)
        if path == "/api/v2/agents/launch":
            if headers.get("x-phantombuster-key") != PHANTOMBUSTER_KEY:
                self.auth_failures += 1
                return 401, {"error": "Unauthorized"}, [], False
            return await self._single("phantombuster", payload)
        if path.startswith("/api/campaigns/") and path.endswith("/leads/"):
            if not _basic_password_is(headers.get("authorization", ""), LEMLIST_KEY):
                self.auth_failures += 1
                return 401, {"error": "Unauthorized"}, [], False
            campaign = path.split("/")[3]
            return await self._single("lemlist", payload, campaign)
        return 404, {"error": f"no route {path}"}, [], False

    async def _postmark(
        self, batch: bool, payload: Any
    ) -> tuple[int, Any, list[tuple[str, str]], bool]:
        messages = payload if batch else [payload]
        replies = [self.script("postmark", m) for m in messages]
        await asyncio.sleep(self.latency_s + max(r.delay_s for r in replies))
        whole = next((r for r in replies if r.status in (429, 500, 503)), None)
        if whole is not None:
            for message in messages:
                self._record("postmark", message, taken=False)
            return whole.status, whole.body, list(whole.headers), False
        answers = []
        for message, reply in zip(messages, replies, strict=True):
            if reply.status == 200:
                message_id = self._record("postmark", message, taken=True)
                answers.append(
                    {"ErrorCode": 0, "Message": "OK", "MessageID": message_id, "To": message["To"]}
                )
            else:
                self._record("postmark", message, taken=False)
                answers.append(reply.body)
        if any(r.drop for r in replies):
            return 0, None, [], True
        if batch:
            return 200, answers, [], False
        status = 200 if replies[0].status == 200 else replies[0].status
        return status, answers[0], list(replies[0].headers), False

    async def _single(
        self, provider: str, payload: Any, campaign: str | None = None
    ) -> tuple[int, Any, list[tuple[str, str]], bool]:
        reply = self.script(provider, payload)
        await asyncio.sleep(self.latency_s + reply.delay_s)
        if reply.status != 200:
            self._record(provider, payload, taken=False)
            return reply.status, reply.body, list(reply.headers), False
        if provider == "lemlist":
            lead = (str(campaign), str(payload.get("email") or payload.get("linkedinUrl")))
            if lead in self._leads:
                self._record(provider, payload, taken=False)
                return 400, {"error": "Lead already in the campaign"}, [], False
            self._leads[lead] = self._record(provider, payload, taken=True)
            answer: Any = {"_id": self._leads[lead], "campaignId": campaign, **payload}
        else:
            answer = {"containerId": self._record(provider, payload, taken=True)}
        if reply.drop:
            return 0, None, [], True
        return 200, answer, [], False

    def _record(self, provider: str, payload: dict[str, Any], taken: bool) -> str:
        message_id = f"{provider}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        dispatch, enrollment, step = identify(provider, payload)
        self.received.append(
            Message(
                provider=provider,
                dispatch_id=dispatch,
                enrollment_id=enrollment,
                step_number=step,
                payload=payload,
                taken=taken,
                message_id=message_id if taken else None,
                at=asyncio.get_running_loop().time(),
            )
        )
        return message_id

    def _search(
        self, headers: dict[str, str], query: dict[str, list[str]]
    ) -> tuple[int, Any, list[tuple[str, str]], bool]:
        if headers.get("x-postmark-server-token") != POSTMARK_TOKEN:
            return 401, {"ErrorCode": 10, "Message": "Bad or missing API token"}, [], False
        wanted = (query.get("metadata_dispatch_id") or [""])[0]
        self.searches.append(wanted)
        found = [
            {"MessageID": m.message_id, "Metadata": m.payload.get("Metadata", {})}
            for m in self.taken("postmark")
            if m.dispatch_id == wanted
        ]
        return 200, {"TotalCount": len(found), "Messages": found}, [], False


def identify(provider: str, payload: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """(dispatch id, enrollment id, step number) of a message, as the sender labelled it."""
    if provider == "postmark":
        meta = payload.get("Metadata") or {}
        dispatch, enrollment, step = (
            meta.get("dispatch_id"),
            meta.get("enrollment_id"),
            meta.get("step_number"),
        )
    elif provider == "phantombuster":
        argument = payload.get("argument") or {}
        dispatch, enrollment, step = (
            argument.get("dispatchId"),
            argument.get("enrollmentId"),
            argument.get("stepNumber"),
        )
    else:
        dispatch, enrollment, step = None, payload.get("enrollmentId"), 1
    return dispatch, enrollment, int(step) if step is not None else None


@dataclass(frozen=True, slots=True)
class Arrival:
    """A message as it arrived at the fake, before any scripted delay or answer."""

    at: float
    provider: str
    payload: dict[str, Any]
    attempt: int
    """How many messages for the same touch arrived before this one."""

    @property
    def dispatch_id(self) -> str | None:
        return identify(self.provider, self.payload)[0]

    @property
    def enrollment_id(self) -> str | None:
        return identify(self.provider, self.payload)[1]

    @property
    def touch(self) -> tuple[str, str | None, int | None]:
        """(provider, enrollment id, step number): the same for every attempt at one touch."""
        _, enrollment, step = identify(self.provider, self.payload)
        return self.provider, enrollment, step


class Arrivals:
    """A script that notes when each message arrives (loop time, before the scripted delay),
    then answers as ``rule`` says: what was in flight at a given moment is then known."""

    def __init__(self, rule: Callable[[Arrival], Reply] | None = None) -> None:
        self.rule = rule or (lambda arrival: Reply.taken())
        self.seen: list[Arrival] = []

    def __call__(self, provider: str, payload: dict[str, Any]) -> Reply:
        arrival = Arrival(asyncio.get_running_loop().time(), provider, payload, 0)
        earlier = sum(1 for a in self.seen if a.touch == arrival.touch)
        arrival = Arrival(arrival.at, provider, payload, earlier)
        self.seen.append(arrival)
        return self.rule(arrival)

    def of(self, enrollment_id: str) -> list[Arrival]:
        return [a for a in self.seen if a.enrollment_id == enrollment_id]

    def after(self, moment: float) -> list[Arrival]:
        return [a for a in self.seen if a.at > moment]


def _basic_password_is(header: str, password: str) -> bool:
    import base64

    if not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except ValueError:
        return False
    return decoded.partition(":")[2] == password
