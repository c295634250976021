"""GraphQL response bodies written by orjson, byte for byte what ``json.dumps`` wrote before.

Strawberry encodes a response with ``json.dumps(data, separators=(",", ":"))``; on the
dashboard that walk was a fifth of a worker's time. orjson writes the same compact JSON in a
fraction of it, except in three places, each put back here:

- non-ASCII text and DEL: ``json.dumps`` escapes them (``ensure_ascii``), orjson writes UTF-8;
  those characters, which can only sit inside strings, are escaped after the fact;
- floats below 1e-4: ``repr`` writes ``1e-05``, orjson ``0.00001`` or ``1e-5``; a body with
  anything that looks like one (a string that happens to, too) goes to ``json.dumps``;
- whatever orjson refuses or would write where ``json.dumps`` raises (integers beyond 64 bits,
  non-string keys, datetimes, dataclasses, subclasses of str, int, dict and list): those go to
  ``json.dumps`` too, which answers exactly as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
_OPTIONS |= orjson.OPT_PASSTHROUGH_DATACLASS
_SMALL_DECIMAL = re.compile(rb"\.0000")
_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9]{1,3}[,}\]]")
"""The two ways orjson writes a float below 1e-4 (``0.00001``, ``2.5e-7``), which ``repr``
writes ``1e-05`` and ``2.5e-07``; above it, the two agree. Each pattern starts with a literal,
which the regex engine looks for first: on the dashboard both cost 2 ms, the walk 10."""
_NOT_PRINTABLE_ASCII = re.compile("[\x7f-\U0010ffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def encode_response(data: Any) -> bytes:
    """``json.dumps(data, separators=(",", ":")).encode()``, faster."""
    try:
        body = orjson.dumps(data, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(data, separators=(",", ":")).encode()
    if _SMALL_DECIMAL.search(body) or _NEGATIVE_EXPONENT.search(body):
        return json.dumps(data, separators=(",", ":")).encode()
    if body.isascii() and b"\x7f" not in body:
        return body
    return _NOT_PRINTABLE_ASCII.sub(_escape, body.decode()).encode()
