"""What a request's layers noticed of the database's absence, so that its answer becomes a 503.

An exception that escapes a route is classified by the HTTP edge; a layer that turns
exceptions into an ordinary response (GraphQL puts them in its error list) calls
``note_unavailable`` instead, and the edge replaces its response by the 503 before it starts.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class Outage:
    """What a request's layers noticed: the failure that makes its answer a 503, if any."""

    failure: BaseException | None = None


_outage: ContextVar[Outage | None] = ContextVar("database_outage", default=None)


def watch_outage() -> tuple[Outage, Token[Outage | None]]:
    """Start collecting the current request's outage (``app.request_envelope`` answers it)."""
    outage = Outage()
    return outage, _outage.set(outage)


def unwatch_outage(token: Token[Outage | None]) -> None:
    _outage.reset(token)


def note_unavailable(exc: BaseException) -> None:
    """Make the current request's response a 503 (no effect outside a request)."""
    outage = _outage.get()
    if outage is not None and outage.failure is None:
        outage.failure = exc
