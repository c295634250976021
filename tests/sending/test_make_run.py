"""``make run`` shows a campaign progress offline: ``campaign-api dev`` migrates and seeds an
empty database, serves, and runs one sender beside the API (a dry run without credentials),
which delivers the seeded active contact's due step; stopping ``dev`` stops the sender."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.cli.seed import seed_id

CLI = Path(sys.executable).parent / "campaign-api"


@pytest.fixture
def empty_database(new_database: Callable[[str], tuple[str, str]]) -> str:
    return new_database("campaign_dev")[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
async def test_dev_serves_and_runs_a_sender_that_delivers_the_seeded_due_touch(
    empty_database: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    env |= {
        "DATABASE_URL": empty_database,
        "CAMPAIGN_DATA_DIR": str(tmp_path / "data"),
        "CAMPAIGN_PORT": str(_free_port()),
        "CAMPAIGN_LOG_LEVEL": "WARNING",
    }
    dev = await asyncio.create_subprocess_exec(
        str(CLI), "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    dsn = make_url(empty_database).set(drivername="postgresql").render_as_string(False)
    grace = seed_id("enrollment:grace")
    try:
        deadline = asyncio.get_running_loop().time() + 60
        sent = None
        while sent is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.25)
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                continue
            try:
                sent = await connection.fetchrow(
                    "SELECT d.step_number, d.dry_run, e.current_step FROM dispatches d"
                    " JOIN enrollments e ON e.id = d.enrollment_id"
                    " WHERE d.enrollment_id = $1 AND d.status = 'sent'",
                    grace,
                )
            except asyncpg.UndefinedTableError:
                pass
            finally:
                await connection.close()
        assert sent is not None, "the sender beside the API delivered nothing"
        assert sent["step_number"] == 2  # the seed has Grace past step 1 and due for step 2
        assert sent["dry_run"] is True
        assert sent["current_step"] == 2  # the send event's effects moved her on
    finally:
        dev.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(dev.communicate(), 60)
    assert dev.returncode == 0, stderr.decode()[-2000:]
    connection = await asyncpg.connect(dsn)
    try:
        senders = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    assert senders == 0, "the sender stopped with dev: no connection of it is left"
