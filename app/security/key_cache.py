"""Recently verified API keys, so a busy client is not looked up on every request.

A webhook provider or a dashboard sends many requests a second with the same key; looking
each up costs a pooled connection and a round trip that dwarf the request's own work. Only
keys that verified are kept (by SHA-256, never the key), for ``ttl_s`` seconds: that is how
long a revocation can take to reach a process that has just seen the key. Time is read from
``clock`` (monotonic seconds), which tests replace to step past a TTL without waiting it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.security.api_keys import Principal


class KeyCache:
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, principal = entry
        if self._clock() >= expires:
            del self._entries[key_hash]
            return None
        return principal

    def remember(self, key_hash: str, principal: Principal) -> None:
        if self._ttl_s <= 0:
            return
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            # Expired entries go first; failing that, the oldest (dicts keep insertion order).
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = (now + self._ttl_s, principal)
