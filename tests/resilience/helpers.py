"""What the resilience tests share: the 503 contract, fresh events, blocked-backend waits."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.webhooks.helpers import load, with_enrollment

READ = "{ templates(first: 5) { totalCount nodes { id name } } }"


def assert_unavailable(response: httpx.Response) -> None:
    """The 503 every route gives when the database is away: Retry-After and a JSON error."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"] == "DATABASE_UNAVAILABLE", response.text
    assert "Traceback" not in response.text


def lemlist_event(enrollment_id: str) -> dict[str, Any]:
    """A lemlist activity with a fresh id: lemlist authenticates by a secret, not a key, so
    its request reaches the group-commit batcher without any SQL before it."""
    payload = copy.deepcopy(
        with_enrollment(load("lemlist", "emailsOpened"), "lemlist", enrollment_id)
    )
    payload["_id"] = f"act-{uuid.uuid4().hex}"
    return payload


async def wait_for_lock_wait(engine: AsyncEngine, application_name: str = "campaign-api") -> int:
    """The pid of the backend (of this database) that waits on a lock; fails after ~20 s."""
    for _ in range(400):
        async with engine.connect() as connection:
            pid = await connection.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND application_name = :name"
                    " AND pid <> pg_backend_pid() LIMIT 1"
                ),
                {"name": application_name},
            )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no request ever waited on the lock")
