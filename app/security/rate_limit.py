"""Token buckets per caller, kept in this process's memory.

A bucket holds up to ``per_minute`` tokens and refills continuously at ``per_minute / 60``
tokens a second; a request takes one. A bucket left alone until it is full again is the same
as no bucket, so idle buckets are dropped, and a table never holds more than ``max_buckets``
(the least recently used goes first), which bounds memory whatever the number of callers.
These are a process's own: ``CAMPAIGN_RATE_LIMIT_STORE=memory`` uses them alone (with several
workers each limit is then multiplied by the number of processes); otherwise they decide only
while the shared store fails (``app.security.shared_limits``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.settings import RateLimitStore, Settings

if TYPE_CHECKING:
    from app.security.shared_limits import Store

Clock = Callable[[], float]
MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0
    """Seconds until a token is available again (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, rounded up, at least 1: a client waiting that long gets through."""
        return str(max(1, math.ceil(self.retry_after_s)))


class TokenBuckets:
    """One bucket per key (an API key id, a client address…), all with the same rate."""

    def __init__(
        self, per_minute: int, *, clock: Clock = time.monotonic, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable) -> Decision:
        """Spend one token of ``key``'s bucket, or say how long until one is there."""
        bucket = self._refilled(key)
        if bucket is not None and bucket.tokens < 1.0:
            return Decision(False, (1.0 - bucket.tokens) / self.rate)
        if bucket is None:
            bucket = _Bucket(self.capacity, self.clock())
            self._buckets[key] = bucket
            self._evict()
        bucket.tokens -= 1.0
        return Decision(True)

    def check(self, key: Hashable) -> Decision:
        """Whether ``key`` has a token, without spending it."""
        bucket = self._refilled(key)
        if bucket is None or bucket.tokens >= 1.0:
            return Decision(True)
        return Decision(False, (1.0 - bucket.tokens) / self.rate)

    def _refilled(self, key: Hashable) -> _Bucket | None:
        """The key's bucket brought up to now (None when it has none: a full one)."""
        self._drop_idle()
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self.clock()
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets.move_to_end(key)
        return bucket

    def _drop_idle(self) -> None:
        """Drop buckets that have refilled completely; the least recently used come first."""
        now = self.clock()
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if oldest.tokens + (now - oldest.updated) * self.rate < self.capacity:
                break
            del self._buckets[key]

    def _evict(self) -> None:
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)


class ProcessLimit:
    """This process's own buckets behind the face the shared limits have (``await take``)."""

    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets

    async def take(self, key: Hashable) -> Decision:
        return self.buckets.take(key)


class Limit(Protocol):
    async def take(self, key: Hashable) -> Decision: ...


class RateLimiter:
    """The service's three limits: API keys on /graphql, webhook senders, failed logins; in
    the store the settings name (``app.security.shared_limits``), or in this process only."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        figures = {
            "requests": settings.rate_limit_per_minute,
            "webhooks": settings.webhook_rate_limit_per_minute,
            "auth": settings.auth_failures_per_minute,
        }
        self._store: Store | None = None
        limits: dict[str, Limit]
        if settings.rate_limit_backend is RateLimitStore.MEMORY:
            limits = {
                kind: ProcessLimit(TokenBuckets(per_minute, clock=clock))
                for kind, per_minute in figures.items()
            }
        else:
            # Imported here: the shared limits are built on this module's buckets.
            from app.security.shared_limits import SharedBuckets, StoreHealth, open_store

            self._store = open_store(settings)
            health = StoreHealth(self._store, clock)
            limits = {
                kind: SharedBuckets(
                    kind,
                    per_minute,
                    health,
                    block_percent=settings.rate_limit_block_percent,
                    clock=clock,
                )
                for kind, per_minute in figures.items()
            }
        self.requests = limits["requests"]
        self.webhooks = limits["webhooks"]
        self.auth_failures = limits["auth"]

    async def close(self) -> None:
        """Release the shared store's connection, if any."""
        if self._store is not None:
            await self._store.close()
