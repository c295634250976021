"""One LISTEN connection per process, for every channel the process cares about.

A NOTIFY is delivered only when its transaction commits, so a callback never hears of work it
cannot see yet. When the connection drops, it reconnects with backoff and calls the
``on_connected`` callbacks once it listens again: a notification sent while it was away is
lost, so whoever relies on them re-reads what they may have missed from the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

import asyncpg

logger = logging.getLogger("campaign_api.notifications")

Handler = Callable[[str], None]
"""Called with a notification's payload, on the event loop; it must not block."""

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


class Notifications:
    def __init__(self, dsn: str, name: str = "listener") -> None:
        self._dsn = dsn
        self._name = name
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._on_connected: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the connection listens on every channel (tests wait for it)."""
        self.server_pid: int | None = None
        """The PostgreSQL backend of the current connection (tests terminate it)."""

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler`` with each payload NOTIFYed on ``channel``; before ``start``."""
        if self._task is not None:
            raise RuntimeError("register handlers before the listener starts")
        self._handlers[channel].append(handler)

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the connection listens again (the first time too)."""
        if self._task is not None:
            raise RuntimeError("register callbacks before the listener starts")
        self._on_connected.append(callback)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-notifications")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _dispatch(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:
                logger.exception("%s: a handler of %s failed", self._name, channel)

    async def _run(self) -> None:
        delay = FIRST_DELAY_S
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=10,
                    server_settings={"application_name": f"campaign-api-{self._name}"},
                )
                self.server_pid = connection.get_server_pid()
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                for channel in self._handlers:
                    await connection.add_listener(channel, self._dispatch)
                self.listening.set()
                for callback in self._on_connected:
                    callback()
                delay = FIRST_DELAY_S
                await lost.wait()
                logger.warning("%s lost its LISTEN connection; reconnecting", self._name)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning(
                    "%s cannot LISTEN (%s); retrying in %.1f s",
                    self._name,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
            finally:
                self.listening.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                        await connection.close(timeout=2)
