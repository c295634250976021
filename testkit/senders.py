"""Senders as an operator runs them: ``campaign-api worker`` subprocesses, configured by the
environment to send to the fake providers (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from testkit.fake_providers import LEMLIST_KEY, PHANTOMBUSTER_KEY, POSTMARK_TOKEN

CLI = Path(sys.executable).parent / "campaign-api"


def worker_environment(database_url: str, base_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_") and k != "DATABASE_URL"
    }
    env |= {
        "DATABASE_URL": database_url,
        "CAMPAIGN_ENVIRONMENT": "development",
        "CAMPAIGN_LOG_LEVEL": "WARNING",
        "CAMPAIGN_POSTMARK_API_URL": base_url,
        "CAMPAIGN_POSTMARK_SERVER_TOKEN": POSTMARK_TOKEN,
        "CAMPAIGN_PHANTOMBUSTER_API_URL": base_url,
        "CAMPAIGN_PHANTOMBUSTER_API_KEY": PHANTOMBUSTER_KEY,
        "CAMPAIGN_LEMLIST_API_URL": base_url,
        "CAMPAIGN_LEMLIST_API_KEY": LEMLIST_KEY,
        "CAMPAIGN_SEND_RETRY_BASE_S": "0.05",
        "CAMPAIGN_SEND_RETRY_MAX_S": "0.5",
        "CAMPAIGN_SEND_LEASE_S": "10",
        "CAMPAIGN_SEND_IDLE_S": "2",
        "CAMPAIGN_SEND_HTTP_TIMEOUT_S": "5",
    }
    return env | extra


async def start_worker(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(CLI),
        "worker",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_worker(
    process: asyncio.subprocess.Process, timeout_s: float = 30
) -> tuple[int, str]:
    """SIGTERM, then wait; returns the exit code and what it wrote to stderr."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


async def kill_worker(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.communicate()


@contextlib.asynccontextmanager
async def workers(env: dict[str, str], count: int, *args: str) -> AsyncIterator[list[Any]]:
    """``count`` senders for the block; each must stop cleanly (exit 0) at its end."""
    processes = [await start_worker(env, *args) for _ in range(count)]
    try:
        yield processes
    finally:
        results = [await stop_worker(p) for p in processes]
        for code, stderr in results:
            assert code == 0, stderr[-2000:]
