"""Group commit for webhooks: concurrent requests share one ingestion transaction.

A busy provider sends many single-event requests at once. Giving each its own transaction
costs a commit (and its round trips) per event; instead, requests queue their events, and one
task stores whatever has gathered (up to ``max_events``) in one transaction. Each request is
answered only after that commit, with the counts of its own events, so "acknowledged means
stored" still holds.

Up to ``in_flight`` transactions run at once: while one waits for its commit, the next batch
gathers and starts, so the process does not sit idle on the database's round trips; when all
are busy, the queue grows, and so does the next batch. They take their locks in the same order
as any other ingestion (``app.services.ingestion.events``).

While busy, the batcher keeps its connections checked out of the pool (until they have been
idle for ``linger_s``) and runs its transactions on the driver: a checkout per batch (with its
pre-ping) and SQLAlchemy's session cost more than the batch's SQL. A connection that fails is
discarded, and the next batch opens a fresh one.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.driver import DriverConnection
from app.db.engine import RETRYABLE_SQLSTATES
from app.db.errors import is_database_unavailable
from app.services.ingestion.events import NewEvent, ingest

_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class BatchCounts:
    accepted: int
    duplicates: int
    orphaned: int


@dataclass(slots=True)
class _Pending:
    events: Sequence[NewEvent]
    done: asyncio.Future[BatchCounts]


class IngestBatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        max_events: int = 1_000,
        in_flight: int = 2,
        linger_s: float = 0.25,
    ) -> None:
        self._engine = engine
        self._linger_s = linger_s
        self._max_events = max_events
        self._slots = asyncio.Semaphore(in_flight)
        self._idle: list[tuple[AsyncConnection, DriverConnection]] = []
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._storing: set[asyncio.Task[None]] = set()
        self._releasing: asyncio.Task[None] | None = None

    async def submit(self, events: Sequence[NewEvent]) -> BatchCounts:
        """Store ``events`` with whatever else is waiting; return once they are committed."""
        if self._task is None or self._task.done():
            # A context of its own: it serves many requests, so it must not carry the first
            # one's request id and statement count.
            self._task = asyncio.create_task(
                self._run(), name="ingest-batcher", context=contextvars.Context()
            )
        pending = _Pending(events, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.done

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._storing) if t is not None]
        for task in tasks:
            task.cancel()
        if self._releasing is not None:
            tasks.append(self._releasing)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._release_idle()

    async def _gather(self) -> list[_Pending]:
        """The first waiting request, and whatever else has queued once the requests already
        received have had their turn.

        No time window: while the batcher's other transactions commit, requests queue up, so
        batches grow with the load by themselves, and a lone request is stored at once. (A
        2 ms window cost a third of the single-event throughput: workers sat idle in it.)
        """
        batch = [await self._next()]
        size = len(batch[0].events)
        await asyncio.sleep(0)
        while size < self._max_events and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            size += len(item.events)
        return batch

    async def _next(self) -> _Pending:
        """The next request. Meanwhile, every ``linger_s``, idle connections go back to the
        pool (others need them, and it checks them before lending them again)."""
        while self._queue.empty() and (self._idle or self._storing):
            try:
                return await asyncio.wait_for(self._queue.get(), self._linger_s)
            except TimeoutError:
                # In the background, so that a database slow to answer does not hold up the
                # next batch; close() waits for it.
                if self._releasing is None or self._releasing.done():
                    self._releasing = asyncio.create_task(self._release_idle())
        return await self._queue.get()

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._gather()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._settle(batch), name="ingest-batch")
            self._storing.add(task)
            task.add_done_callback(self._storing.discard)

    async def _settle(self, batch: list[_Pending]) -> None:
        """Store the batch and answer its requests, whatever happens."""
        try:
            await self._store(batch)
        except Exception as exc:
            if is_database_unavailable(exc):
                # Retrying one by one would only wait on the missing database once per
                # request: everyone waiting gets the answer now, and the next batch retries.
                _fail(batch, exc)
                return
            # One bad request must not fail the others: each gets its own transaction.
            for pending in batch:
                try:
                    await self._store([pending])
                except Exception as own:  # the request's own failure is its answer
                    _fail([pending], own)
        finally:
            self._slots.release()

    async def _store(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        for attempt in range(1, _ATTEMPTS + 1):
            connection, db = await self._checkout()
            try:
                result = await ingest(db, events)  # one statement: its own transaction
            except BaseException as exc:
                await self._checkin(connection, db)
                retryable = getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES
                if not retryable or attempt == _ATTEMPTS:
                    raise
            else:
                await self._checkin(connection, db)
                break
        position = 0
        for pending in batch:
            ids = result.event_ids[position : position + len(pending.events)]
            position += len(pending.events)
            stored = [i for i in ids if i is not None]
            if not pending.done.done():
                pending.done.set_result(
                    BatchCounts(
                        accepted=len(stored),
                        duplicates=len(ids) - len(stored),
                        orphaned=sum(1 for i in stored if i in result.orphans),
                    )
                )

    async def _checkout(self) -> tuple[AsyncConnection, DriverConnection]:
        """An idle connection of the batcher's, or a new one; one the server closed meanwhile
        is discarded."""
        while self._idle:
            connection, db = self._idle.pop()
            if db.usable():
                return connection, db
            await _release(connection, db)
        connection = await self._engine.connect()
        db = await DriverConnection.under(connection)
        # The batches run the same few statements with arrays for parameters, which
        # PostgreSQL would otherwise plan again at every execution: generic plans cost the
        # database about a quarter less CPU per event. Reset before the pool gets it back.
        await db.driver.execute("SET plan_cache_mode = force_generic_plan")
        return connection, db

    async def _checkin(self, connection: AsyncConnection, db: DriverConnection) -> None:
        if db.usable():
            self._idle.append((connection, db))
        else:
            await _release(connection, db)

    async def _release_idle(self) -> None:
        idle, self._idle = self._idle, []
        for pair in idle:
            await _release(*pair)


async def _release(connection: AsyncConnection, db: DriverConnection) -> None:
    """Back to the pool, or discarded when it is closed or was left in a transaction (a
    statement cut off midway)."""
    try:
        if not db.usable():
            raise ConnectionError("left in a transaction or closed")
        await db.driver.execute("RESET plan_cache_mode")
    except Exception:
        await connection.invalidate()
    await connection.close()


def _fail(batch: list[_Pending], exc: Exception) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
