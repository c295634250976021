"""What must never appear in a response body: stack traces, SQL, driver and module names."""

from __future__ import annotations

LEAK_MARKERS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "asyncpg",
    "psycopg",
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    " FROM ",
    "app.services",
    "resolvers.",
    "Exception",
)


def leaks(text: str) -> list[str]:
    """The markers found in ``text`` (case-sensitive: "select" is a word a message may use)."""
    return [marker for marker in LEAK_MARKERS if marker in text]
