"""Hypothesis strategies for the values a black-box attack found the service weakest on (issue
24): times at and past the ends of what PostgreSQL and Python hold, with extreme offsets;
text with lone surrogates, NUL and other edges; JSON nested far too deep, as a value and as
text. Every string and time input of the GraphQL schema and of each webhook format draws
from them (tests/fuzz/test_hostile_fuzz.py; the schemathesis runs use the time strategy).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.leaks import leaks

_ALPHABET = st.characters(codec=None, exclude_characters="\n")
_SURROGATES = st.characters(categories=["Cs"])
_NASTY = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ud83d\ude80", "\ufffd", "\u202e", "'", '"', "\\", "%", "_"]
)


def _echo_safe(text: str) -> bool:
    """Leak markers (tests/leaks.py) are words a server may echo back in a message: generated
    text must not hold them, or an honest echo would look like a leak."""
    return not leaks(text)


@st.composite
def _mixed(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(st.one_of(st.text(_ALPHABET, max_size=8), _NASTY, _SURROGATES), max_size=6)
    )
    return "".join(parts)


def deep_text(max_depth: int = 3_000) -> st.SearchStrategy[str]:
    """A JSON-looking string nested ``depth`` deep (arrays or objects)."""
    return st.builds(
        lambda depth, kind: (
            "[" * depth + "]" * depth if kind else '{"a":' * depth + "1" + "}" * depth
        ),
        st.integers(1, max_depth),
        st.booleans(),
    )


def with_lone_surrogate() -> st.SearchStrategy[str]:
    """Text with a lone surrogate somewhere (what JSON's ``"\\ud800"`` decodes to)."""
    return st.builds(
        lambda before, surrogate, after: before + surrogate + after,
        st.text(max_size=10),
        _SURROGATES,
        st.text(max_size=10),
    )


def spoiled(plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A plausible value (an address, an id) with one bad character put inside it, first half
    the time: it passes the shape checks a random string fails (the local part of an e-mail
    address takes anything), and so gets as far as the database."""
    return st.builds(
        lambda text, at, bad: text[: at % (len(text) + 1)] + bad + text[at % (len(text) + 1) :],
        plausible,
        st.one_of(st.just(0), st.integers(0, 400)),
        st.one_of(_SURROGATES, st.just("\x00")),
    )


def hostile_text(max_size: int = 300) -> st.SearchStrategy[str]:
    """Ordinary text, and text with lone surrogates, NUL, pairs, long runs, deep brackets."""
    return st.one_of(
        st.text(max_size=40),
        with_lone_surrogate(),
        _mixed(),
        st.text(_ALPHABET, min_size=max_size // 2, max_size=max_size),
        deep_text(200),
        st.sampled_from(["", " ", "null", "0", "-1", "1e309", "NaN", "\ud800", "a\x00b"]),
    ).filter(_echo_safe)


_EDGE_TIMES = [
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.999999+23:59",
    "9999-12-01T23:59:59Z",
    "9999-12-02T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2025-11-09T13:00:00",
    "2025-11-09T13:00:00+24:00",
    "2025-02-30T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2025-11-09",
    "2025-11-09T13:00:00.000Z",
    "2025-W45-7T13:00:00Z",
]


@st.composite
def _offset_time(draw: st.DrawFn) -> str:
    year = draw(st.one_of(st.integers(1, 3), st.integers(9997, 9999), st.integers(1, 9999)))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    clock = (
        f"{draw(st.integers(0, 23)):02}:{draw(st.integers(0, 59)):02}:{draw(st.integers(0, 59)):02}"
    )
    fraction = draw(st.sampled_from(["", ".000", ".999999", ".5"]))
    sign = draw(st.sampled_from("+-"))
    hours, minutes = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    zone = draw(st.sampled_from(["Z", "", f"{sign}{hours:02}:{minutes:02}"]))
    return f"{year:04}-{month:02}-{day:02}T{clock}{fraction}{zone}"


def hostile_time() -> st.SearchStrategy[str]:
    """ISO 8601 times across the whole range with any offset, the ends of what PostgreSQL and
    Python hold and just past them, malformed ones, and hostile text."""
    return st.one_of(st.sampled_from(_EDGE_TIMES), _offset_time(), hostile_text(60))


def hostile_json(depth: int = 3) -> st.SearchStrategy[Any]:
    """A JSON value whose keys and strings are hostile, a few levels deep, or one far deeper
    than any limit (built as a value, not by recursion in Hypothesis)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        hostile_text(40),
    )
    nested = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(hostile_text(20), children, max_size=3)
        ),
        max_leaves=8,
    )
    too_deep = deep_text(100).map(json.loads)
    return st.one_of(nested, too_deep) if depth else nested


def hostile_object() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(hostile_text(20), hostile_json(), max_size=4)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def utf8_only(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """For a client that sends UTF-8 as is (schemathesis does): it cannot encode a lone
    surrogate at all, so those draws are left to the tests that send escapes."""
    return strategy.filter(_utf8)
