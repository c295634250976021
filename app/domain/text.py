"""What text PostgreSQL can hold, decided once for every door (GraphQL, webhooks, the CLI)."""

from __future__ import annotations


def encodable(text: str) -> bool:
    """Valid Unicode: no lone surrogate (JSON's ``"\\ud800"`` decodes to one), which neither
    UTF-8 nor PostgreSQL can hold."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> bool:
    """What PostgreSQL can store as text: UTF-8 encodable (no lone surrogates), no NUL."""
    return "\x00" not in text and encodable(text)
