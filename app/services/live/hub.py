"""One hub per process: subscribers register per instance; each announced change of an
instance is loaded ONCE (for all of that instance's subscribers) and fanned out to their
bounded queues.

The hub keeps, per watched instance, the position of the last item it loaded. A notification
(or a LISTEN reconnect, which may have lost some) marks instances dirty; one flush task loads
every dirty instance's new items in one batch (``Load``) and offers them to each subscriber. A
subscriber whose queue is full is closed with ``SLOW_CONSUMER`` rather than buffered without
bound; a revoked key's subscribers are closed with ``KEY_REVOKED``. Nothing here knows GraphQL:
what a loaded item carries is the ``Load`` function's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError
from app.observability import metrics
from app.observability.sql_observer import start_counting, stop_counting
from app.services.live.activity import Position
from app.services.live.holds import KeyHolds

logger = logging.getLogger("campaign_api.live")

SLOW_CONSUMER = 4499
"""WebSocket close code for a subscriber that fell a whole queue behind."""
KEY_REVOKED = 4403
"""WebSocket close code for the subscriptions of a key revoked while they were open."""

RETRY_S = 0.05
"""How soon an instance is looked at again when items wait behind a running transaction or
were cut by the batch limit, or when a load failed (doubled up to ``RETRY_MAX_S``)."""
RETRY_MAX_S = 2.0

Wants = Literal["activity", "status"]


class Delivered(Protocol):
    position: Position


T = TypeVar("T", bound=Delivered)


@dataclass(slots=True)
class Loaded(Generic[T]):
    """One instance's load: its new items (oldest first), the instance as it is now, and
    whether more items may be waiting."""

    items: list[T]
    instance: Any
    more: bool


Load = Callable[[dict[str, Position], set[str]], Awaitable[dict[str, "Loaded[Any]"]]]
"""Loads the new items of several instances after their positions, in one batch, and the
instance itself for those of the set given (instanceStatus subscribers wait for them); an
instance that needs neither is skipped (``Loaded`` only for the rest)."""
Tail = Callable[[str], Awaitable[Position]]
"""The position after which live delivery of an instance starts; raises for an unknown one."""
Close = Callable[[int, str], None]
"""Closes the subscriber's connection with a WebSocket close code and reason."""


@dataclass(eq=False, slots=True)
class Subscriber:
    key_id: uuid.UUID
    instance_id: str
    wants: Wants
    queue: asyncio.Queue[Any]
    close: Close
    position: Position | None = None
    """The last item handed to the client; live items at or before it are not sent again."""
    closed: bool = False

    def skip(self, item: Delivered) -> bool:
        """Whether ``item`` was already delivered (by a replay); else it becomes the last."""
        if self.position is not None and item.position <= self.position:
            return True
        self.position = item.position
        return False


@dataclass(slots=True)
class _Watch:
    position: Position
    subscribers: set[Subscriber] = field(default_factory=set)


class Hub:
    def __init__(
        self,
        load: Load,
        tail: Tail,
        *,
        queue_size: int,
        per_key: int,
        holds: KeyHolds,
    ) -> None:
        self._load = load
        self._tail = tail
        self._queue_size = queue_size
        self._per_key = per_key
        self._holds = holds
        self._watched: dict[str, _Watch] = {}
        self._by_key: dict[uuid.UUID, set[Subscriber]] = defaultdict(set)
        self._dirty: set[str] = set()
        self._announced: set[str] = set()
        """Dirty because something committed (not a retry): instanceStatus hears of these."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._retry_delay = RETRY_S
        self.flushes = 0
        """Loads run so far (tests wait on it)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-hub")

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def subscribe(
        self, key_id: uuid.UUID, instance_id: str, wants: Wants, close: Close
    ) -> Subscriber:
        """Register before replaying, so nothing announced meanwhile is missed; raises
        DomainError for an unknown instance or a key already at its limit (counted for the
        whole service: ``KeyHolds``)."""
        if not await self._holds.admit(key_id, self._per_key):
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"this API key already has {self._per_key} open subscriptions"
                " (CAMPAIGN_LIVE_SUBSCRIPTIONS_PER_KEY)",
            )
        try:
            if instance_id not in self._watched:
                position = await self._tail(instance_id)
                # Others may have subscribed to it while we read the tail.
                self._watched.setdefault(instance_id, _Watch(position))
        except BaseException:
            self._holds.released(key_id)
            raise
        subscriber = Subscriber(key_id, instance_id, wants, asyncio.Queue(self._queue_size), close)
        self._watched[instance_id].subscribers.add(subscriber)
        self._by_key[key_id].add(subscriber)
        metrics.live_subscriptions.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        watch = self._watched.get(subscriber.instance_id)
        if watch is None or subscriber not in watch.subscribers:
            return
        watch.subscribers.discard(subscriber)
        if not watch.subscribers:
            del self._watched[subscriber.instance_id]
            if (handle := self._retries.pop(subscriber.instance_id, None)) is not None:
                handle.cancel()
        keyed = self._by_key[subscriber.key_id]
        keyed.discard(subscriber)
        if not keyed:
            del self._by_key[subscriber.key_id]
        self._holds.released(subscriber.key_id)
        metrics.live_subscriptions.dec()

    def notified(self, payload: str) -> None:
        """A NOTIFY of ``campaign_activity``: the payload is an instance's id."""
        if payload in self._watched:
            self._announced.add(payload)
            self._mark(payload)

    def reconnected(self) -> None:
        """The LISTEN connection is back: what it missed is read from the table."""
        for instance_id in self._watched:
            self._announced.add(instance_id)
            self._mark(instance_id)

    def key_revoked(self, payload: str) -> None:
        """A NOTIFY of ``campaign_api_keys``: the payload is the revoked key's id."""
        try:
            key_id = uuid.UUID(payload)
        except ValueError:
            logger.warning("ignored a key revocation whose payload is not a key id")
            return
        for subscriber in list(self._by_key.get(key_id, ())):
            self._drop(subscriber, KEY_REVOKED, "the API key was revoked", "revoked")

    async def replay(self, instance_id: str, after: Position) -> Loaded[Any]:
        """What the stream holds after ``after``, for one subscriber asking to resume."""
        return (await self._load({instance_id: after}, set()))[instance_id]

    def watched(self) -> Sequence[str]:
        return list(self._watched)

    def subscribers_of(self, instance_id: str) -> int:
        watch = self._watched.get(instance_id)
        return 0 if watch is None else len(watch.subscribers)

    def _with_status(self, instance_ids: set[str]) -> set[str]:
        """The instances among these whose status subscribers must be sent the instance."""
        return {
            i
            for i in instance_ids
            if any(s.wants == "status" for s in self._watched[i].subscribers)
        }

    def _mark(self, instance_id: str) -> None:
        self._dirty.add(instance_id)
        self._wake.set()

    def _retry_later(self, instance_id: str, delay: float) -> None:
        if instance_id in self._retries:
            return

        def due() -> None:
            del self._retries[instance_id]
            if instance_id in self._watched:
                self._mark(instance_id)

        self._retries[instance_id] = asyncio.get_running_loop().call_later(delay, due)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            positions = {i: self._watched[i].position for i in self._dirty if i in self._watched}
            announced, self._announced = self._announced & positions.keys(), set()
            self._dirty.clear()
            if not positions:
                continue
            count, token = start_counting()
            try:
                loaded = await self._load(positions, self._with_status(announced))
            except Exception:
                logger.exception("live: loading %d instances failed; retrying", len(positions))
                self._announced |= announced
                for instance_id in positions:
                    self._retry_later(instance_id, self._retry_delay)
                self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)
                continue
            finally:
                stop_counting(token)
                metrics.live_load_statements.inc(count.value)
            self._retry_delay = RETRY_S
            self.flushes += 1
            metrics.live_loads.inc()
            for instance_id, result in loaded.items():
                self._fan_out(instance_id, result, instance_id in announced)

    def _fan_out(self, instance_id: str, result: Loaded[Any], announced: bool) -> None:
        """Items to activity subscribers; the instance to status subscribers when a change
        was announced (a retry that only found held-back items is no news to them)."""
        watch = self._watched.get(instance_id)
        if watch is None:
            return
        if result.items:
            watch.position = max(watch.position, result.items[-1].position)
        if result.more:
            self._retry_later(instance_id, RETRY_S)
        if result.instance is None:
            announced = False
        for subscriber in list(watch.subscribers):
            if subscriber.wants == "activity":
                offered = result.items
            else:
                offered = [result.instance] if announced else []
            for item in offered:
                try:
                    subscriber.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._drop(
                        subscriber, SLOW_CONSUMER, "the subscriber fell behind its queue", "slow"
                    )
                    break

    def _drop(self, subscriber: Subscriber, code: int, reason: str, why: str) -> None:
        if subscriber.closed:
            return
        subscriber.closed = True
        self.unsubscribe(subscriber)
        metrics.live_closed.labels(reason=why).inc()
        subscriber.close(code, reason)
