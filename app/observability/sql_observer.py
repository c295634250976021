"""Watch an engine's SQL: count the statements each request runs and warn about slow ones.

The count lives in a context variable that ``app.web.envelope`` opens per request; SQLAlchemy
runs its events in a greenlet that shares the calling task's context, so every statement of
the request's own connections (sessions, loaders' per-request connection) is seen.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability.logs import get_logger

STATEMENT_PREVIEW_CHARS = 200
_START_KEY = "campaign_api.statement_started"

log = get_logger("sql")


@dataclass(slots=True)
class StatementCount:
    value: int = 0


_current: ContextVar[StatementCount | None] = ContextVar("sql_statements", default=None)


def start_counting() -> tuple[StatementCount, Token[StatementCount | None]]:
    """Count the statements run by this task (and the tasks it starts) until ``stop_counting``."""
    count = StatementCount()
    return count, _current.set(count)


def stop_counting(token: Token[StatementCount | None]) -> None:
    _current.reset(token)


def instrument_engine(engine: AsyncEngine, slow_ms: int) -> None:
    """Idempotent: attach the counting and slow-statement listeners to ``engine``."""
    sync_engine = engine.sync_engine
    if event.contains(sync_engine, "before_cursor_execute", _before):
        return
    event.listen(sync_engine, "before_cursor_execute", _before)
    event.listen(sync_engine, "after_cursor_execute", _slow_after(slow_ms))


def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    count = _current.get()
    if count is not None:
        count.value += 1
    conn.info[_START_KEY] = time.perf_counter()


def _slow_after(slow_ms: int) -> Any:
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info.pop(_START_KEY, None)
        if started is None:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms > slow_ms:
            log.warning(
                "slow_sql",
                duration_ms=round(elapsed_ms, 1),
                threshold_ms=slow_ms,
                statement=" ".join(statement.split())[:STATEMENT_PREVIEW_CHARS],
            )

    return after
