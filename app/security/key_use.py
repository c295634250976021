"""Writing the keys' ``last_used_at`` off the request path.

A request never writes: the key cache queues a key's use at most once a minute, and this
recorder writes the queue every few seconds in one set-based statement, and once more at
shutdown. It writes through a one-connection engine of its own, so that it never waits for,
or takes, a connection that requests need, and its statement is never counted as a request's.
A write that fails is dropped (the key's next use, a minute on, is written): a last-use time
is worth no retry and must never fail a request.
"""

from __future__ import annotations

import asyncio
import contextlib

from app.db.engine import create_engine
from app.observability.logs import get_logger
from app.observability.sql_observer import instrument_engine
from app.security.api_keys import record_key_use
from app.security.key_cache import KeyCache
from app.settings import Settings

log = get_logger("api_keys")

FLUSH_EVERY_S = 5.0


class KeyUseRecorder:
    def __init__(self, settings: Settings, cache: KeyCache, every_s: float = FLUSH_EVERY_S) -> None:
        self.engine = create_engine(settings.model_copy(update={"pool_size": 1, "max_overflow": 0}))
        instrument_engine(self.engine, settings.slow_sql_ms)
        self._cache = cache
        self._every_s = every_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="key-use-recorder")

    async def flush(self) -> None:
        """Write the uses queued so far (nothing at all when none is)."""
        key_ids = self._cache.take_uses()
        if not key_ids:
            return
        try:
            async with self.engine.begin() as connection:
                await record_key_use(connection, key_ids)
        except Exception as exc:  # a background write: nobody to hand the failure to
            log.warning("key_use_not_recorded", keys=len(key_ids), error=type(exc).__name__)

    async def close(self) -> None:
        """Stop the periodic writes (a write under way finishes), write what is still queued,
        and close the connection."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        await self.engine.dispose()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every_s)
            await self.flush()
