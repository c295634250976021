"""The 503 with ``Retry-After`` answered when the database cannot be reached, whichever layer
noticed (``app.db.outage`` collects what the inner layers noticed)."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from app.web.errors import json_error

logger = logging.getLogger("campaign_api.unavailable")

RETRY_AFTER_S = 5
UNAVAILABLE_CODE = "DATABASE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry after the time in Retry-After"


def unavailable_response() -> JSONResponse:
    return json_error(
        503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def log_unavailable(exc: BaseException) -> None:
    # The exception's type only: its text may name hosts, and the pool's state is not news.
    logger.warning("database unavailable, answered 503: %s", type(exc).__name__)
