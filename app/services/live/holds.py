"""Open subscriptions per API key, counted for the whole service however many processes
serve it.

Each process writes, per key, how many subscriptions it holds to the UNLOGGED table
``live_key_holds``, under a lease it renews every third of ``lease_s``; a process that dies
stops counting when its lease runs out. Admitting one more subscription takes the key's
advisory lock, sums the live holds of the other processes and writes this one's, in one
transaction: two processes cannot both take a key's last place. Closing a subscription
lowers this process's row a moment later (``flush``): until then the service errs on the
side of refusing.

When the database cannot be reached, the process's own count decides (the limit degrades to a
per-process one, never open, never closed), as the rate limits do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.driver import DriverConnection
from app.db.errors import DATABASE_ERRORS, is_database_unavailable
from app.observability.sql_observer import as_upkeep

logger = logging.getLogger("campaign_api.live")

LEASE_S = 30.0
"""A process's holds count this long after its last renewal."""

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))"
"""The key's lock, until the transaction ends. A statement of its own: a statement that took
it while reading would read with the snapshot it began with, before the wait, and miss what
the previous holder of the lock had just committed."""

_OTHERS = """
    SELECT coalesce(sum(held), 0)::int AS held FROM live_key_holds
    WHERE key_id = $1 AND process <> $2 AND expires_at > now()
"""
"""The other processes' live holds of a key."""

_WRITE = """
    INSERT INTO live_key_holds (key_id, process, held, expires_at)
    VALUES ($1, $2, $3, now() + make_interval(secs => $4))
    ON CONFLICT (key_id, process) DO UPDATE SET held = excluded.held,
                                                expires_at = excluded.expires_at
"""

_FORGET = "DELETE FROM live_key_holds WHERE key_id = $1 AND process = $2"

_RENEW = """
    UPDATE live_key_holds SET expires_at = now() + make_interval(secs => $2)
    WHERE process = $1
"""

_PRUNE = "DELETE FROM live_key_holds WHERE expires_at < now() - interval '1 hour'"


class KeyHolds:
    """This process's side of the shared count: ``admit`` before a subscription opens,
    ``released`` when one closes."""

    def __init__(self, engine: AsyncEngine, lease_s: float = LEASE_S) -> None:
        self._engine = engine
        self._lease_s = lease_s
        self.process = uuid.uuid4().hex
        self._held: dict[uuid.UUID, int] = {}
        self._lowered: set[uuid.UUID] = set()
        self._admitting = asyncio.Lock()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def held(self, key_id: uuid.UUID) -> int:
        return self._held.get(key_id, 0)

    async def admit(self, key_id: uuid.UUID, limit: int) -> bool:
        """Count one more subscription of ``key_id`` here if the service holds fewer than
        ``limit``; False (nothing counted) when it holds ``limit`` already."""
        async with self._admitting:
            mine = self.held(key_id) + 1
            try:
                others = await self._admit(key_id, mine, limit)
            except DATABASE_ERRORS as exc:
                if not is_database_unavailable(exc):
                    raise
                logger.warning("open subscriptions counted per process: %s", type(exc).__name__)
                others = 0
            if others + mine > limit:
                return False
            self._held[key_id] = mine
            self._lowered.discard(key_id)
            return True

    async def _admit(self, key_id: uuid.UUID, mine: int, limit: int) -> int:
        async with self._engine.connect() as connection:
            db = await DriverConnection.under(connection)
            async with db.driver.transaction():
                await db.execute(_LOCK, key_id)
                others = (await db.fetch(_OTHERS, key_id, self.process))[0]["held"]
                if others + mine <= limit:
                    await db.execute(_WRITE, key_id, self.process, mine, self._lease_s)
                return int(others)

    def released(self, key_id: uuid.UUID) -> None:
        """One subscription of ``key_id`` closed here; the shared count follows at the next
        flush."""
        left = self.held(key_id) - 1
        if left > 0:
            self._held[key_id] = left
        else:
            self._held.pop(key_id, None)
        self._lowered.add(key_id)
        self._changed.set()

    async def flush(self) -> None:
        """Write the lowered counts, and renew the lease of every row of this process."""
        lowered, self._lowered = self._lowered, set()
        try:
            async with self._engine.connect() as connection:
                db = await DriverConnection.under(connection)
                async with db.driver.transaction():
                    for key_id in sorted(lowered):
                        held = self.held(key_id)
                        if held:
                            await db.execute(_WRITE, key_id, self.process, held, self._lease_s)
                        else:
                            await db.execute(_FORGET, key_id, self.process)
                    await db.execute(_RENEW, self.process, self._lease_s)
        except DATABASE_ERRORS as exc:
            self._lowered |= lowered
            logger.warning("open subscription counts not written: %s", type(exc).__name__)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-key-holds")

    async def _run(self) -> None:
        """Flush soon after a subscription closes, and at least every third of the lease."""
        as_upkeep()
        beats = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._lease_s / 3)
            self._changed.clear()
            await self.flush()
            beats += 1
            if beats % 100 == 0:
                await self._prune()

    async def _prune(self) -> None:
        """Rows of processes gone for an hour (their lease long run out) are dropped."""
        with contextlib.suppress(*DATABASE_ERRORS):
            async with self._engine.connect() as connection:
                db = await DriverConnection.under(connection)
                await db.execute(_PRUNE)

    async def close(self) -> None:
        """Stop, and take this process's holds out of the count."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*DATABASE_ERRORS):
            async with self._engine.connect() as connection:
                db = await DriverConnection.under(connection)
                await db.execute("DELETE FROM live_key_holds WHERE process = $1", self.process)
