"""Answer 503 with ``Retry-After`` when the database cannot be reached, whichever layer noticed.

An exception that escapes a route is classified here; a layer that turns exceptions into an
ordinary response (GraphQL puts them in its error list) calls ``note_unavailable`` instead,
and its response is replaced by the 503 before it starts.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db_errors import is_database_unavailable
from app.http_errors import json_error

logger = logging.getLogger("campaign_api.unavailable")

RETRY_AFTER_S = 5
UNAVAILABLE_CODE = "DATABASE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry after the time in Retry-After"


@dataclass(slots=True)
class _Outage:
    failure: BaseException | None = None


_outage: ContextVar[_Outage | None] = ContextVar("database_outage", default=None)


def note_unavailable(exc: BaseException) -> None:
    """Make the current request's response a 503 (no effect outside a request)."""
    outage = _outage.get()
    if outage is not None and outage.failure is None:
        outage.failure = exc


def unavailable_response() -> JSONResponse:
    return json_error(
        503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


class DatabaseUnavailableMiddleware:
    """Turn "the database is unreachable" into a 503 for every HTTP route; other errors pass."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outage = _Outage()
        token = _outage.set(outage)
        started = replaced = False

        async def send_or_replace(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                if outage.failure is not None:
                    replaced = True
                    _log(outage.failure)
                    await unavailable_response()(scope, receive, send)
                    return
            if not replaced:
                await send(message)

        try:
            await self.app(scope, receive, send_or_replace)
        except Exception as exc:
            if started or not is_database_unavailable(exc):
                raise
            _log(exc)
            await unavailable_response()(scope, receive, send)
        finally:
            _outage.reset(token)


def _log(exc: BaseException) -> None:
    # The exception's type only: its text may name hosts, and the pool's state is not news.
    logger.warning("database unavailable, answered 503: %s", type(exc).__name__)
