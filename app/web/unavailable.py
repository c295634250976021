"""The 503 with ``Retry-After`` answered when the database cannot be reached, whichever layer
noticed (``app.db.outage`` collects what the inner layers noticed)."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from app.db.errors import is_schema_missing
from app.web.errors import json_error

logger = logging.getLogger("campaign_api.unavailable")

RETRY_AFTER_S = 5
UNAVAILABLE_CODE = "DATABASE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry after the time in Retry-After"
NOT_MIGRATED_CODE = "DATABASE_NOT_MIGRATED"
NOT_MIGRATED_MESSAGE = "database is not migrated: run `campaign-api migrate`"


def unavailable_response(cause: BaseException | None = None) -> JSONResponse:
    """The 503; when ``cause`` is a missing table, it says the database needs migrating."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if cause is not None and is_schema_missing(cause):
        return json_error(503, NOT_MIGRATED_CODE, NOT_MIGRATED_MESSAGE, headers=headers)
    return json_error(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, headers=headers)


def log_unavailable(exc: BaseException) -> None:
    # The exception's type only: its text may name hosts, and the pool's state is not news.
    logger.warning("database unavailable, answered 503: %s", type(exc).__name__)
