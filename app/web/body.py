"""Reading a JSON request body within a size limit, shared by /graphql and the webhooks.

The declared Content-Length is checked first and the body is then read chunk by chunk,
stopping as soon as it passes the limit, so an oversized body is never held in memory.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from app.domain.limits import JSON_NESTING_MAX
from app.services.validation import nesting_exceeds
from app.web.errors import Refused

JSON_MEDIA_TYPE = "application/json"
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""Where a surrogate in a body ``parse_json`` accepted comes from: a ``\\uD800``-style escape
(a pair or a lone half). Searching the raw bytes is cheap and spares most bodies a walk of
their parsed value for lone ones."""


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _too_large(limit: int) -> Refused:
    return Refused(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body of an application/json request of at most ``limit`` bytes."""
    if _media_type(request) != JSON_MEDIA_TYPE:
        raise Refused(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    declared = request.headers.get("content-length", "")
    # ASCII digits only ("²".isdigit() is true, and int() refuses it); a length too long to
    # convert (int() refuses 4,300 digits) is too large anyway.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise _too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _too_large(limit)
    except ClientDisconnect:
        raise Refused(
            400, "CLIENT_DISCONNECTED", "the client left before sending the body"
        ) from None
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The body's JSON, in UTF-8 as RFC 8259 requires (so a lone surrogate can only come from
    a ``\\uD800``-style escape)."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise Refused(400, "MALFORMED_JSON", "the body is not valid UTF-8 JSON") from None


def refuse_deep_nesting(body: bytes, value: Any) -> None:
    """Refuse a body nesting arrays and objects deeper than JSON_NESTING_MAX, so nothing that
    walks it later (nor Python's own recursion) can run out of stack. For the webhooks, whose
    providers' fields may hold anything: GraphQL inputs are typed, and its JSON inputs held to
    their own depth limit; a walk of a 100 MB ``bulkEnroll`` would cost seconds."""
    # Brackets outnumbering the limit is necessary for nesting past it: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > JSON_NESTING_MAX and nesting_exceeds(value):
        raise _too_deep()


def _too_deep() -> Refused:
    return Refused(
        400,
        "MALFORMED_JSON",
        f"the body nests arrays and objects deeper than {JSON_NESTING_MAX} levels",
    )
