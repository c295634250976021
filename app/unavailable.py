"""Answer 503 with ``Retry-After`` when the database cannot be reached, whichever layer noticed.

An exception that escapes a route is classified by ``app.request_envelope``; a layer that turns
exceptions into an ordinary response (GraphQL puts them in its error list) calls
``note_unavailable`` instead, and its response is replaced by the 503 before it starts.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass

from starlette.responses import JSONResponse

from app.http_errors import json_error

logger = logging.getLogger("campaign_api.unavailable")

RETRY_AFTER_S = 5
UNAVAILABLE_CODE = "DATABASE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry after the time in Retry-After"


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


def unavailable_response() -> JSONResponse:
    return json_error(
        503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def log_unavailable(exc: BaseException) -> None:
    # The exception's type only: its text may name hosts, and the pool's state is not news.
    logger.warning("database unavailable, answered 503: %s", type(exc).__name__)
