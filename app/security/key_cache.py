"""Recently verified API keys, so a busy client is not looked up on every request; and which
keys were used, so their ``last_used_at`` is written off the request path.

A webhook provider or a dashboard sends many requests a second with the same key; looking
each up costs a pooled connection and a round trip that dwarf the request's own work. Only
keys that verified are kept (by SHA-256, never the key), for ``ttl_s`` seconds, and never past
the moment the key expires or its rotated-out secret's grace ends: ``ttl_s`` is how long a
revocation can take to reach a process that has just seen the key.

Each key served (from memory or freshly verified) counts as used; a key is queued for a
``last_used_at`` write at most once per ``use_interval_s``, and ``KeyUseRecorder``
(``app.security.key_use``) writes the queue in one statement. Time is read from ``clock``
(monotonic seconds), which tests replace to step past a TTL without waiting it out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from app.security.api_keys import Principal

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

    def remember(self, key_hash: str, principal: Principal) -> None:
        """Keep a key that has just verified (and count it as used)."""
        self._note_use(principal.key_id)
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
