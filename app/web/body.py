"""Reading a JSON request body within a size limit, shared by /graphql and the webhooks.

The declared Content-Length is checked first and the body is then read chunk by chunk,
stopping as soon as it passes the limit, so an oversized body is never held in memory.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from app.web.errors import Refused

JSON_MEDIA_TYPE = "application/json"


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
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "MALFORMED_JSON", "the body is not valid JSON") from None


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_body(request, limit))
