"""Rate limits that hold for the whole service, however many processes serve it.

Every limit is one token bucket per caller in a store all processes share: a row of the
UNLOGGED table ``rate_limit_buckets`` (the default: the database is already there), or a
moving window in Redis (``CAMPAIGN_REDIS_URL``, through the ``limits`` library).

A round trip per request would be the hot path's largest cost (measured: it more than halves
webhook ingestion, see the README), so a process draws tokens in blocks of ``B`` =
``CAMPAIGN_RATE_LIMIT_BLOCK_PERCENT`` of the limit (at least 1), with one atomic upsert (or
one ``limits`` hit of that cost), and spends them locally. The accuracy argument:

- no request is admitted without a token drawn from the shared bucket, so over any stretch of
  time the service admits at most what the shared bucket yields (its capacity plus the
  refill), plus what processes held when it began: at most ``N x (B - 1)`` for ``N``
  processes (a draw's first token is spent at once);
- a request is refused only when its process holds no token and the shared bucket has none,
  so the service admits at least that yield minus the tokens stranded in processes the
  caller no longer reaches: again at most ``N x (B - 1)``.

At 1% the error is at most ``N`` % of the limit (within ±10% up to 10 processes serving the
same caller), and none for limits under 200 a minute (``B`` is 1). A refusal is remembered
until the shared bucket has a token again, which is exact: only time adds tokens. A busy
bucket costs a process at most about 2 draws a second (it admits at most ``L / 60`` a
second, ``L / 100`` tokens a draw), whatever the request rate.

When the store fails (database or Redis down, a timeout), this process's own buckets decide
for the next second: the limits degrade to per-process ones, never open, never closed; the
failure is logged and counted (``campaign_rate_limit_store_errors_total``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import create_engine
from app.observability import metrics
from app.observability.logs import get_logger
from app.security.rate_limit import MAX_BUCKETS, Clock, Decision, TokenBuckets
from app.settings import RateLimitStore, Settings

log = get_logger("rate_limits")

ALLOWED = Decision(True)
IDLE_S = 60.0
"""Any bucket is full again a minute after its last draw (limits are per minute): a row or a
lease untouched that long is the same as none, and is dropped."""
STORE_DOWN_S = 1.0
"""After a failed draw, how long this process's own buckets decide before the store is tried
again: a store that is down costs one failed round trip a second, not one a request."""
STORE_TIMEOUT_S = 0.5
"""The longest a request waits for a draw (its turn on the connection included), once the
store is connected; past it, the store counts as failed."""

# One atomic statement: refill the bucket to now, grant up to $4 whole tokens, keep the rest.
# statement_timestamp() is one instant for the whole statement; a draw that waited for the
# row's lock may have started before the previous draw's time, so time never goes back.
_REFILLED = (
    "least($2::float8, b.tokens + greatest(0.0, extract(epoch FROM statement_timestamp()"
    " - b.updated)::float8) * $3::float8)"
)
DRAW_SQL = f"""
INSERT INTO rate_limit_buckets AS b (bucket, tokens, granted, updated)
VALUES ($1, $2::float8 - least($4::float8, floor($2::float8)), least($4::float8, floor($2::float8)),
        statement_timestamp())
ON CONFLICT (bucket) DO UPDATE SET
    granted = least($4::float8, floor({_REFILLED})),
    tokens = {_REFILLED} - least($4::float8, floor({_REFILLED})),
    updated = greatest(b.updated, statement_timestamp())
RETURNING granted, tokens
"""
PRUNE_SQL = (
    "DELETE FROM rate_limit_buckets"
    f" WHERE updated < statement_timestamp() - interval '{int(IDLE_S)} seconds'"
)


@dataclass(frozen=True, slots=True)
class Draw:
    granted: int
    retry_after_s: float = 0.0
    """When nothing was granted: seconds until the shared bucket has a token."""


class Store(Protocol):
    name: str

    def timeout_s(self) -> float:
        """How long the next draw may take, a connection to open included."""
        ...

    async def draw(self, bucket: str, per_minute: int, want: int) -> Draw: ...

    async def close(self) -> None: ...


class PostgresStore:
    """Buckets in ``rate_limit_buckets``, drawn through one connection of this process's own
    (never one a request needs, and never counted as a request's statement), reopened after a
    failure. Rows idle for a minute are full, and are deleted once a minute."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._engine = create_engine(
            settings.model_copy(update={"pool_size": 1, "max_overflow": 0})
        )
        self._connect_timeout_s = settings.pool_timeout_s
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._driver: asyncpg.Connection | None = None
        self._pruned_at = time.monotonic()

    async def draw(self, bucket: str, per_minute: int, want: int) -> Draw:
        async with self._lock:
            try:
                driver = await self._connected()
                row = await driver.fetchrow(
                    DRAW_SQL, bucket, float(per_minute), per_minute / 60.0, float(want)
                )
                if time.monotonic() - self._pruned_at >= IDLE_S:
                    await self._prune(driver)
            except BaseException:
                await self._disconnect()
                raise
        granted = int(row["granted"])
        if granted:
            return Draw(granted)
        return Draw(0, (1.0 - row["tokens"]) * 60.0 / per_minute)

    def timeout_s(self) -> float:
        connected = self._driver is not None and not self._driver.is_closed()
        return STORE_TIMEOUT_S if connected else self._connect_timeout_s + STORE_TIMEOUT_S

    async def prune(self) -> None:
        """Delete the buckets idle for a minute (full again, the same as none)."""
        async with self._lock:
            try:
                await self._prune(await self._connected())
            except BaseException:
                await self._disconnect()
                raise

    async def _prune(self, driver: asyncpg.Connection) -> None:
        self._pruned_at = time.monotonic()
        await driver.execute(PRUNE_SQL)

    async def _connected(self) -> asyncpg.Connection:
        if self._driver is None or self._driver.is_closed():
            await self._disconnect()
            self._connection = await self._engine.connect()
            raw = await self._connection.get_raw_connection()
            self._driver = raw.driver_connection
        return self._driver

    async def _disconnect(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception as exc:  # already broken: nothing more to release
                log.debug("rate_limit_connection_close_failed", error=type(exc).__name__)

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()
        await self._engine.dispose()


class RedisStore:
    """A moving window per bucket in Redis, through ``limits``: a draw of ``want`` tokens is
    one hit of that cost, and when the window has less room, one hit of what is left."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import coredis
        from limits import RateLimitItemPerMinute
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        self._item = RateLimitItemPerMinute
        # The pool is ours, so that closing the store closes its connections.
        self._pool = coredis.ConnectionPool.from_url(
            url, connect_timeout=STORE_TIMEOUT_S, stream_timeout=STORE_TIMEOUT_S
        )
        storage = RedisStorage(
            "async+" + url,
            connection_pool=self._pool,
            key_prefix="campaign-api",
            wrap_exceptions=True,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    def timeout_s(self) -> float:
        return STORE_TIMEOUT_S

    async def draw(self, bucket: str, per_minute: int, want: int) -> Draw:
        item = self._item(per_minute)
        if await self._limiter.hit(item, bucket, cost=want):
            return Draw(want)
        stats = await self._limiter.get_window_stats(item, bucket)
        left = min(want, stats.remaining)
        if left >= 1 and await self._limiter.hit(item, bucket, cost=left):
            return Draw(left)
        return Draw(0, max(0.0, stats.reset_time - time.time()))

    async def close(self) -> None:
        self._pool.disconnect()


class StoreHealth:
    """Whether the shared store is worth asking: not for ``STORE_DOWN_S`` after a failure."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self._clock = clock
        self._down_until = 0.0

    def up(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        if self.up():
            log.warning(
                "rate_limit_store_failed",
                store=self.store.name,
                error=type(exc).__name__,
                fallback="per-process limits",
                for_s=STORE_DOWN_S,
            )
        self._down_until = self._clock() + STORE_DOWN_S
        metrics.labelled(metrics.rate_limit_store_errors_total, self.store.name).inc()


@dataclass(slots=True)
class _Lease:
    """What this process knows of one shared bucket: tokens it drew and has not spent, and
    until when the shared bucket is known to be empty."""

    used: float
    tokens: int = 0
    refused_until: float = 0.0
    drawing: asyncio.Future[None] | None = None


class SharedBuckets:
    """One limit (per API key, per webhook credential, per failing address) in a shared store,
    with this process's own ``TokenBuckets`` for the seconds the store fails."""

    def __init__(
        self,
        kind: str,
        per_minute: int,
        health: StoreHealth,
        *,
        block_percent: float,
        clock: Clock = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.kind = kind
        self.per_minute = per_minute
        self.health = health
        self.block = max(1, math.floor(per_minute * block_percent / 100))
        self.fallback = TokenBuckets(per_minute, clock=clock, max_buckets=max_buckets)
        self.clock = clock
        self.max_buckets = max_buckets
        self._leases: OrderedDict[str, _Lease] = OrderedDict()

    def __len__(self) -> int:
        return len(self._leases)

    async def take(self, key: Hashable) -> Decision:
        """Spend one token of ``key``'s shared bucket, or say how long until one is there."""
        parts = key if isinstance(key, tuple) else (key,)
        bucket = ":".join((self.kind, *map(str, parts)))  # requests:<key id>, auth:<address>
        while True:
            now = self.clock()
            lease = self._lease(bucket, now)
            if lease.tokens > 0:
                lease.tokens -= 1
                return ALLOWED
            if now < lease.refused_until:
                return Decision(False, lease.refused_until - now)
            if not self.health.up():
                return self.fallback.take(key)
            if lease.drawing is not None:
                # One draw per bucket at a time in a process: the others wait for its tokens.
                await asyncio.shield(lease.drawing)
                continue
            return await self._draw(bucket, key, lease)

    async def _draw(self, bucket: str, key: Hashable, lease: _Lease) -> Decision:
        lease.drawing = asyncio.get_running_loop().create_future()
        store = self.health.store
        try:
            async with asyncio.timeout(store.timeout_s()):
                drawn = await store.draw(bucket, self.per_minute, self.block)
        except Exception as exc:
            self.health.failed(exc)
            return self.fallback.take(key)
        finally:
            lease.drawing.set_result(None)
            lease.drawing = None
        if drawn.granted:
            lease.tokens += drawn.granted - 1
            return ALLOWED
        lease.refused_until = self.clock() + drawn.retry_after_s
        return Decision(False, drawn.retry_after_s)

    def _lease(self, bucket: str, now: float) -> _Lease:
        leases = self._leases
        while leases:
            oldest_key, oldest = next(iter(leases.items()))
            if now - oldest.used < IDLE_S or oldest.drawing is not None:
                break
            del leases[oldest_key]
        lease = leases.get(bucket)
        if lease is None:
            lease = leases[bucket] = _Lease(now)
            while len(leases) > self.max_buckets:
                leases.popitem(last=False)
        else:
            lease.used = now
            leases.move_to_end(bucket)
        return lease


def open_store(settings: Settings) -> Store:
    """The shared store the settings name (nothing is connected before the first draw)."""
    if settings.rate_limit_backend is RateLimitStore.REDIS:
        assert settings.redis_url is not None  # the settings refuse redis without a URL
        return RedisStore(settings.redis_url.get_secret_value())
    return PostgresStore(settings)
