"""Structured logs: JSON lines in production, readable lines in development, redacted always.

structlog renders our own events; the standard library's records (uvicorn, SQLAlchemy, any
library) go through the same processors and redaction, so every line has one shape.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from app.observability.redaction import redact_event
from app.observability.request_context import current_request_id
from app.settings import Settings

_HANDLER_NAME = "campaign-api"
# SQLAlchemy reports pool housekeeping (and, at INFO, every statement) on these loggers; the
# access line counts statements and slow ones get their own warning instead.
_QUIET_LOGGERS = ("sqlalchemy",)


def _add_request_id(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    request_id = current_request_id()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _shared_processors() -> list[Any]:
    """Run on every event, ours and the standard library's, before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        structlog.processors.format_exc_info,
        redact_event,
    ]


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is emitted (servers and test runners
    replace it after start-up)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return None


def _renderer(settings: Settings) -> Any:
    if settings.is_production:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(settings: Settings) -> None:
    """Idempotent: route every log record through structlog's processors to stderr.

    uvicorn's own loggers lose their handlers and propagate here; its access log is silenced,
    because the access middleware writes one richer line per request instead.
    """
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(settings),
        ],
    )
    handler = _CurrentStderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger named under ``campaign_api``."""
    return structlog.stdlib.get_logger(f"campaign_api.{name}")
