"""orjson where json was: response bodies are the bytes ``json.dumps`` wrote (app.web.json_body),
and JSON columns decode to what ``json.loads`` gave (resolvers.loaders.database)."""

from __future__ import annotations

import datetime
import json
import math
import random
from typing import Any

import pytest

from app.web.json_body import encode_response
from resolvers.loaders.database import decode_json_column


def reference(data: Any) -> bytes:
    """What Strawberry's own encoder answers with."""
    return json.dumps(data, separators=(",", ":")).encode()


def test_floats_at_every_magnitude() -> None:
    rng = random.Random(29)
    for _ in range(20_000):
        value = rng.choice([1.0, 1.5, 7.0, rng.random(), round(rng.random(), 3)])
        value *= 10.0 ** rng.randint(-320, 300)
        if not math.isfinite(value):
            continue
        value = -value if rng.random() < 0.5 else value
        for data in ([value], {"a": value}, {"x": [1, value, "b"]}):
            assert encode_response(data) == reference(data), repr(value)


TEXT = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x11000))) + "😀\U0010ffff"


@pytest.mark.parametrize(
    "data",
    [
        {"text": TEXT, "del": "a\x7fb"},
        {"key " + TEXT: [TEXT, 1, None, True, False, 2**63, 2**64 - 1, -(2**63)]},
        {"big": 2**70},
        {"strings that look like numbers": ["1e-5", ":1e-05", "0.00001", "[0.0000"]},
        {"nested": [[{"a": [{}, []]}], {"b": {"c": 0.1}}]},
    ],
)
def test_text_integers_and_nesting(data: Any) -> None:
    assert encode_response(data) == reference(data)


def test_what_json_dumps_refuses_it_refuses() -> None:
    for data in ({1: 2}, {"at": datetime.datetime(2026, 12, 7)}):
        try:
            expected: Any = reference(data)
        except TypeError as error:
            with pytest.raises(TypeError, match=str(error)):
                encode_response(data)
        else:
            assert encode_response(data) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1.5, -0.0, 0.00001, 1e-7, 123456789012345678, true, null, "x"]}',
        '{"big": 18446744073709551616, "bigger": -99999999999999999999999,'
        ' "ok": 9223372036854775807}',
        '{"huge": 1' + "0" * 400 + "}",
        '{"text": "\\u00e9\\ud83d\\ude00 \\u0001 caf\u00e9", "digits": "1234567890123456789012"}',
        '{"floats": [0.1, 0.30000000000000004, 2.2250738585072014e-308, 1.7976931348623157e308]}',
        "[]",
        '"only a string"',
    ],
)
def test_json_columns_decode_as_json_loads_does(text: str) -> None:
    decoded = decode_json_column(text)
    expected = json.loads(text)
    assert decoded == expected
    assert reference(decoded) == reference(expected)  # floats and ints alike: same types
