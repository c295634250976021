"""Where a touch goes: an enrollment's e-mail address or LinkedIn profile URL, validated and
normalized the same way in Python (enrollment checks, operators' imports) and in SQL (the
sender's suppression check, the suppressions table's CHECK, the effects that suppress).

An address is compared in its normalized form only: e-mail lower-cased and trimmed; a LinkedIn
URL lower-cased, trimmed, without scheme, ``www.`` (with or without a scheme, however often
repeated), query, fragment or trailing slash.
"""

from __future__ import annotations

import hashlib
import re

from app.domain.enums import Channel
from app.domain.text import storable

ADDRESS_MAX = 320
METADATA_KEY: dict[Channel, str] = {Channel.EMAIL: "email", Channel.LINKEDIN: "linkedin_url"}
"""The enrollment metadata field that holds each channel's address."""

_EMAIL = re.compile(
    r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_LINKEDIN = re.compile(r"^(?:[a-z]{2,3}\.)?linkedin\.com/(?:in|pub)/[^/\s?#]{1,200}$")
_LINKEDIN_PREFIX = re.compile(r"^(?:https?://|www\.)*")


def _lower(value: str) -> str:
    """Lower case as PostgreSQL's ``lower()`` gives it (libc locale): character by character,
    one character for one (capital dotted I becomes ``i``, a final capital sigma the plain
    small sigma), where ``str.lower`` applies Unicode's special and contextual casing. ASCII
    text, nearly every address, is lowered whole (the same, and a tenth of a sender's CPU)."""
    if value.isascii():
        return value.lower()
    return "".join(character.lower()[0] for character in value)


def normalize(channel: Channel, raw: str) -> str:
    """The form an address is stored and compared in (what ``normalized_sql`` computes:
    only spaces are trimmed, as ``btrim`` does)."""
    value = _lower(raw.strip(" "))
    if channel is Channel.EMAIL:
        return value
    value = _LINKEDIN_PREFIX.sub("", value)
    value = value.split("?", 1)[0].split("#", 1)[0]
    return value.rstrip("/")


def problem(channel: Channel, raw: object) -> str | None:
    """Why ``raw`` cannot be used as the channel's address, or None when it can."""
    if not isinstance(raw, str) or not raw.strip():
        return "missing"
    if len(raw) > ADDRESS_MAX:
        return f"longer than {ADDRESS_MAX} characters"
    if not storable(raw):
        return "not valid Unicode text (a NUL or a lone surrogate)"
    value = normalize(channel, raw)
    if channel is Channel.EMAIL:
        return None if _EMAIL.fullmatch(value) else "not an e-mail address"
    return None if _LINKEDIN.fullmatch(value) else "not a LinkedIn profile URL (linkedin.com/in/…)"


def normalized_sql(channel: Channel, expression: str) -> str:
    """SQL computing ``normalize(channel, <expression>)``; a test holds the two equal."""
    lowered = f"lower(btrim({expression}))"
    if channel is Channel.EMAIL:
        return lowered
    return (
        "rtrim(split_part(split_part(regexp_replace("
        f"{lowered}, '^(https?://|www\\.)*', ''), '?', 1), '#', 1), '/')"
    )


def metadata_address_sql(channel: Channel, metadata: str) -> str:
    """SQL: the normalized address an enrollment's ``metadata`` holds for ``channel``."""
    return normalized_sql(channel, f"{metadata} ->> '{METADATA_KEY[channel]}'")


def address_hash(address: str) -> str:
    """The SHA-256 (hex) of a normalized address, as a hashed suppression keeps it; equal to
    ``hash_sql`` over the same text (a test holds the two equal)."""
    return hashlib.sha256(address.encode()).hexdigest()


def hash_sql(expression: str) -> str:
    """SQL computing ``address_hash(<expression>)``."""
    return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"
