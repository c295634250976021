"""Proof that a transaction waits on another's lock, read from the server, not from a clock."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

APP_CONNECTIONS = "campaign-api"  # the application_name of every connection app.db opens


async def backend_pid(connection: Any) -> int:
    """The server process behind a connection or session (pg_backend_pid)."""
    return int(await connection.scalar(text("SELECT pg_backend_pid()")))


async def wait_for_lock_wait(
    engine: AsyncEngine,
    *,
    blocked_by: int | None = None,
    application_name: str = APP_CONNECTIONS,
    timeout_s: float = 20.0,
) -> int:
    """The pid of a backend of this database that waits on a lock: one ``blocked_by`` holds,
    when given (pg_blocking_pids). Polls pg_stat_activity from ``engine``'s own connections,
    a new transaction each time (the view is a snapshot per transaction); fails after
    ``timeout_s``."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND application_name = :name"
        " AND pid <> pg_backend_pid()"
    )
    params: dict[str, Any] = {"name": application_name}
    if blocked_by is not None:
        sql += " AND CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))"
        params["holder"] = blocked_by
    query = text(sql + " ORDER BY pid LIMIT 1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with engine.connect() as connection:
            pid = await connection.scalar(query, params)
        if pid is not None:
            return int(pid)
        if loop.time() > deadline:
            holder = "" if blocked_by is None else f" held by backend {blocked_by}"
            raise AssertionError(f"no backend waited on a lock{holder} within {timeout_s} s")
        await asyncio.sleep(0.02)
