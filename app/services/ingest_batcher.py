"""Group commit for webhooks: concurrent requests share one ingestion transaction.

A busy provider sends many single-event requests at once. Giving each its own transaction
costs a commit (and its round trips) per event; instead, requests queue their events, and one
task stores whatever has gathered (up to ``max_events``, waiting at most ``max_wait_s`` after
the first) in one transaction. Each request is answered only after that commit, with the
counts of its own events, so "acknowledged means stored" still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.db_errors import is_database_unavailable
from app.services.events import NewEvent, ingest


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
        sessionmaker: async_sessionmaker[AsyncSession],
        max_events: int = 1_000,
        max_wait_s: float = 0.002,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._max_events = max_events
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _gather(self) -> list[_Pending]:
        """The first waiting request, then whatever else arrives within the window.

        One sleep per batch rather than a timed wait per request: under load the queue fills
        while the previous transaction commits, and the window costs nothing more.
        """
        batch = [await self._queue.get()]
        size = len(batch[0].events)
        await asyncio.sleep(self._max_wait_s)
        while size < self._max_events and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            size += len(item.events)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            try:
                await self._store(batch)
            except Exception as exc:
                if is_database_unavailable(exc):
                    # Retrying one by one would only wait on the missing database once per
                    # request: everyone waiting gets the answer now, and the next batch retries.
                    _fail(batch, exc)
                    continue
                # One bad request must not fail the others: each gets its own transaction.
                for pending in batch:
                    try:
                        await self._store([pending])
                    except Exception as own:  # the request's own failure is its answer
                        _fail([pending], own)

    async def _store(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        result = await run_in_transaction(
            self._sessionmaker, lambda session: ingest(session, events)
        )
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


def _fail(batch: list[_Pending], exc: Exception) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
