"""Recently verified API keys, so a busy client is not looked up on every request; and which
keys were used, so their ``last_used_at`` is written off the request path.

A webhook provider or a dashboard sends many requests a second with the same key; looking
each up costs a pooled connection and a round trip that dwarf the request's own work. Only
keys that verified are kept (by SHA-256, never the key), for ``ttl_s`` seconds, and never past
the moment the key expires or its rotated-out secret's grace ends: ``ttl_s`` is how long a
revocation can take to reach a process when its notification is lost.

Every change to a key that can end a secret's validity is NOTIFYed on ``KEY_CHANGES_CHANNEL``
by a trigger, in the changing transaction (migration ``20261207_0011``): ``follow_key_changes``
makes the process's one LISTEN connection drop that key at once, and the whole cache when the
connection listens again (what was announced while it was away was not heard).

Each key served (from memory or freshly verified) counts as used; a key is queued for a
``last_used_at`` write at most once per ``use_interval_s``, and ``KeyUseRecorder``
(``app.security.key_use``) writes the queue in one statement. Time is read from ``clock``
(monotonic seconds), which tests replace to step past a TTL without waiting it out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from app.db.notifications import Notifications
from app.security.api_keys import Principal

KEY_CHANGES_CHANNEL = "campaign_api_keys"
"""The channel the ``api_keys`` trigger NOTIFYs with a changed (revoked, rotated...) key's id."""

USE_INTERVAL_S = 60.0
"""A key's use is written at most this often by one process."""


class KeyCache:
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        use_interval_s: float = USE_INTERVAL_S,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._use_interval_s = use_interval_s
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._epoch = 0
        """Counts the forgets: a lookup that started before one may have read a key as it was
        before its revocation, and must not be remembered (see ``remember``)."""
        # When each key was last queued for a write, and the keys queued since the last take.
        self._use_queued_at: dict[uuid.UUID, float] = {}
        self._uses_due: set[uuid.UUID] = set()

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, principal = entry
        if self._clock() >= expires:
            del self._entries[key_hash]
            return None
        self._note_use(principal.key_id)
        return principal

    @property
    def epoch(self) -> int:
        """Read before looking a key up, and hand to ``remember``."""
        return self._epoch

    def remember(self, key_hash: str, principal: Principal, as_of: int | None = None) -> None:
        """Keep a key that has just verified (and count it as used).

        ``as_of`` is the ``epoch`` read before the lookup: when a key was forgotten since, the
        lookup may have raced that key's revocation, so nothing is kept (the next request
        looks the key up again).
        """
        self._note_use(principal.key_id)
        if as_of is not None and as_of != self._epoch:
            return
        lifetime = self._ttl_s
        if principal.valid_for_s is not None:
            lifetime = min(lifetime, principal.valid_for_s)
        if lifetime <= 0:
            return
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            # Expired entries go first; failing that, the oldest (dicts keep insertion order).
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = (now + lifetime, principal)

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop every secret of ``key_id`` (current and rotated-out): it changed."""
        self._epoch += 1
        self._entries = {h: e for h, e in self._entries.items() if e[1].key_id != key_id}

    def clear(self) -> None:
        self._epoch += 1
        self._entries = {}

    def forget_announced(self, payload: str) -> None:
        try:
            key_id = uuid.UUID(payload)
        except ValueError:
            self.clear()  # not ours to understand: forgetting everything is always safe
            return
        self.forget(key_id)

    def _note_use(self, key_id: uuid.UUID) -> None:
        now = self._clock()
        queued_at = self._use_queued_at.get(key_id)
        if queued_at is not None and now - queued_at < self._use_interval_s:
            return
        self._use_queued_at[key_id] = now
        self._uses_due.add(key_id)

    def take_uses(self) -> set[uuid.UUID]:
        """The keys whose use is due to be written; the queue starts again empty."""
        due, self._uses_due = self._uses_due, set()
        horizon = self._clock() - self._use_interval_s
        # Keys not seen for an interval need no memory: their next use is written anyway.
        self._use_queued_at = {k: t for k, t in self._use_queued_at.items() if t > horizon}
        return due


def follow_key_changes(cache: KeyCache, notifications: Notifications) -> None:
    """Make ``cache`` drop a key as soon as its change is announced, and everything when the
    LISTEN connection comes back; before ``notifications.start()``."""
    notifications.on(KEY_CHANGES_CHANNEL, cache.forget_announced)
    notifications.on_connected(cache.clear)
