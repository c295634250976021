"""Watch an engine's SQL: count the statements each request runs and warn about slow ones.

Statements reach the database two ways: through SQLAlchemy, whose cursor events this module
listens to, and straight through asyncpg (``app.db.driver``), which wraps each statement in
``observing(engine)`` itself. Both end in the engine's ``StatementObserver``, so counts, slow
warnings and ``recording`` see every statement whichever way it went.

The count lives in a context variable that ``app.web.envelope`` opens per request; SQLAlchemy
runs its events in a greenlet that shares the calling task's context, so every statement of
the request's own connections (sessions, loaders' per-request connection) is seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability.logs import get_logger

STATEMENT_PREVIEW_CHARS = 200
_START_KEY = "campaign_api.statement_started"

log = get_logger("sql")

StatementListener = Callable[[str], None]
Observed = Callable[[str], AbstractContextManager[None]]
"""Wraps one statement's round trip: ``with observed(sql): await driver.fetch(sql)``."""


@dataclass(slots=True)
class StatementCount:
    value: int = 0


_current: ContextVar[StatementCount | None] = ContextVar("sql_statements", default=None)
_upkeep: ContextVar[bool] = ContextVar("sql_upkeep", default=False)


def as_upkeep() -> None:
    """Mark the calling task's statements as the process's own upkeep (pruning, renewing
    leases), which runs on a timer whatever the requests do: not counted, not reported to
    ``recording``. Only slow ones are still logged. A test recording a request's statements
    saw the hourly prune's DELETE when it happened to run then."""
    _upkeep.set(True)


def start_counting() -> tuple[StatementCount, Token[StatementCount | None]]:
    """Count the statements run by this task (and the tasks it starts) until ``stop_counting``."""
    count = StatementCount()
    return count, _current.set(count)


def stop_counting(token: Token[StatementCount | None]) -> None:
    _current.reset(token)


class StatementObserver:
    """What happens around each statement of one engine, however it was sent."""

    __slots__ = ("listeners", "slow_ms")

    def __init__(self, slow_ms: int) -> None:
        self.slow_ms = slow_ms
        self.listeners: list[StatementListener] = []

    def before(self, statement: str) -> float:
        """Count the statement, tell the listeners; the start time is for ``after``."""
        if _upkeep.get():
            return time.perf_counter()
        count = _current.get()
        if count is not None:
            count.value += 1
        for listener in self.listeners:
            listener(statement)
        return time.perf_counter()

    def after(self, statement: str, started: float) -> None:
        """Warn when the statement took longer than the threshold."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms > self.slow_ms:
            log.warning(
                "slow_sql",
                duration_ms=round(elapsed_ms, 1),
                threshold_ms=self.slow_ms,
                statement=" ".join(statement.split())[:STATEMENT_PREVIEW_CHARS],
            )

    @contextmanager
    def observed(self, statement: str) -> Iterator[None]:
        """``before`` and ``after`` around a statement; a failed one is counted, not timed
        (as SQLAlchemy's ``after_cursor_execute`` does not fire for it)."""
        started = self.before(statement)
        yield
        self.after(statement, started)

    def _before_cursor_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info[_START_KEY] = self.before(statement)

    def _after_cursor_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.pop(_START_KEY, None)
        if started is not None:
            self.after(statement, started)


_observers: WeakKeyDictionary[Engine, StatementObserver] = WeakKeyDictionary()


def instrument_engine(engine: AsyncEngine, slow_ms: int) -> None:
    """Idempotent: give ``engine`` its observer and attach it to SQLAlchemy's cursor events."""
    sync_engine = engine.sync_engine
    if sync_engine in _observers:
        return
    observer = _observers[sync_engine] = StatementObserver(slow_ms)
    event.listen(sync_engine, "before_cursor_execute", observer._before_cursor_execute)
    event.listen(sync_engine, "after_cursor_execute", observer._after_cursor_execute)


def _unobserved(statement: str) -> AbstractContextManager[None]:
    return nullcontext()


def observing(engine: Engine) -> Observed:
    """How a statement sent past SQLAlchemy on ``engine`` is observed: by the engine's
    observer, or not at all on an engine never instrumented (as SQLAlchemy's own statements
    on it are not)."""
    observer = _observers.get(engine)
    return observer.observed if observer is not None else _unobserved


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement ``engine`` runs while open, in order, whichever way it was sent (tests
    and benchmarks count them)."""
    observer = _observers.get(engine.sync_engine)
    if observer is None:
        raise LookupError("the engine is not instrumented: call instrument_engine first")
    statements: list[str] = []
    listener: StatementListener = statements.append
    observer.listeners.append(listener)
    try:
        yield statements
    finally:
        observer.listeners.remove(listener)
