"""SIGTERM on ``campaign-api serve``: the request in flight finishes, new connections are
refused, the application shuts down (disposing its pool) and the process exits 0; a request
still running when the grace period ends is cut off and stores nothing.

A webhook request is made slow for real: the test holds a row lock on the enrollment its event
needs, so the request waits in PostgreSQL until the test lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from testkit import servers
from testkit.servers import Served
from tests.locks import backend_pid, wait_for_lock_wait
from tests.webhooks.helpers import Campaign, Step, count_rows, event, make_campaign, post_events

EXIT_MARGIN_S = 15  # a bound against a hang, not a speed measurement
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]


@contextmanager
def serving(database_url: str, directory: Path, grace_s: int, workers: int = 1) -> Iterator[Served]:
    """``campaign-api serve`` on the test database, as an operator starts it."""
    with servers.serving(
        database_url, directory, workers=workers, CAMPAIGN_SHUTDOWN_GRACE_S=str(grace_s)
    ) as served:
        yield served


async def _refuses_connections(port: int) -> bool:
    """Whether a new TCP connection is refused, waiting up to ~10 s for that to happen."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
    return False


async def _webhook_key(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    async with sessionmaker.begin() as session:
        return await create_api_key(session, "shutdown", frozenset({Scope.WEBHOOKS}))


async def _campaign(engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, (Step("email", 1, 0), Step("email", 2, 24)))


_LOCK = text("SELECT id FROM enrollments WHERE id = CAST(:id AS uuid) FOR UPDATE")


async def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(
    database_url: str,
    tmp_path: Path,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await _webhook_key(sessionmaker)
    campaign = await _campaign(engine)
    grace_s = 30
    with serving(database_url, tmp_path, grace_s) as served:
        async with (
            engine.connect() as locker,
            httpx.AsyncClient(base_url=served.base, timeout=60) as client,
        ):
            await locker.execute(_LOCK, {"id": campaign.enrollment_id})
            slow = asyncio.create_task(
                post_events(client, key, [event(campaign.enrollment_id, "sent", 1)])
            )
            await wait_for_lock_wait(engine, blocked_by=await backend_pid(locker))

            served.process.send_signal(signal.SIGTERM)
            assert await _refuses_connections(served.port)
            assert not slow.done()  # still waiting on the lock while new ones are refused

            await locker.commit()
            response = await slow
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1
        returncode = await asyncio.to_thread(served.process.wait, grace_s + EXIT_MARGIN_S)
    assert returncode == 0
    log = served.log.read_text()
    assert "Application shutdown complete" in log, log  # the lifespan closed the pool
    assert "Traceback" not in log, log
    assert await count_rows(engine, "campaign_events") == 1


async def test_a_request_still_running_after_the_grace_period_is_cut_off_and_stores_nothing(
    database_url: str,
    tmp_path: Path,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await _webhook_key(sessionmaker)
    campaign = await _campaign(engine)
    grace_s = 1
    with serving(database_url, tmp_path, grace_s) as served:
        async with (
            engine.connect() as locker,
            httpx.AsyncClient(base_url=served.base, timeout=60) as client,
        ):
            await locker.execute(_LOCK, {"id": campaign.enrollment_id})
            slow = asyncio.create_task(
                post_events(client, key, [event(campaign.enrollment_id, "sent", 1)])
            )
            backend = await wait_for_lock_wait(engine, blocked_by=await backend_pid(locker))

            served.process.send_signal(signal.SIGTERM)
            returncode = await asyncio.to_thread(served.process.wait, grace_s + EXIT_MARGIN_S)
            outcome = await asyncio.gather(slow, return_exceptions=True)
            await locker.commit()
    assert returncode == 0
    (answer,) = outcome
    if isinstance(answer, httpx.Response):
        assert answer.status_code >= 500, answer.text  # never an acknowledgement
    else:
        assert isinstance(answer, httpx.HTTPError), answer
    await _gone(engine, backend)  # its transaction ended without a commit
    assert await count_rows(engine, "campaign_events") == 0


async def _gone(engine: AsyncEngine, pid: int) -> None:
    for _ in range(400):
        async with engine.connect() as connection:
            alive = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            )
        if not alive:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"backend {pid} of the stopped server never ended")


def _server_sockets(port: int, state: str) -> set[str]:
    """Inodes of the local TCP sockets on ``port`` in ``state`` (0A listening, 01 established)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def _sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_workers_listen_on_sockets_of_their_own_and_share_the_connections(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path, grace_s=5, workers=2) as served:
        for _ in range(300):  # ready once the first worker is; the second may still start
            listening = _server_sockets(served.port, "0A")
            if len(listening) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(listening) == 2, "one listening socket per worker, not one shared"
        workers = [pid for pid in _children(served.process.pid) if _sockets_of(pid) & listening]
        assert len(workers) == 2
        # 32 connections opened at once: with one shared socket, the first worker to wake
        # often took them all. The kernel now spreads them by a hash of their addresses; all
        # 32 landing on one worker has a chance of 2 in 2**32.
        clients = [httpx.AsyncClient(base_url=served.base, timeout=10) for _ in range(32)]
        try:
            answers = await asyncio.gather(*(c.get("/healthz") for c in clients))
            assert {a.status_code for a in answers} == {200}
            established = _server_sockets(served.port, "01")
            held = [len(_sockets_of(pid) & established) for pid in workers]
            assert sum(held) == 32
            assert min(held) > 0, held
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
        served.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(served.process.wait, 5 + EXIT_MARGIN_S)
    assert returncode == 0
    assert "Traceback" not in served.log.read_text()
