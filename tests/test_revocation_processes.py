"""Two ``campaign-api serve`` processes over one database, each caching keys for 300 s: a key
revoked with ``campaign-api api-key revoke`` (a third process) is refused by both, which only its
announcement can explain. The wait is a bound against a hang; the propagation time is measured
by bench/revocation.py."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from testkit.servers import CLI, Served, server_environment, several

HANG_BOUND_S = 10.0
QUERY = {"query": "{ templates { totalCount } }"}


def _cli(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [str(CLI), *args],
        env=server_environment(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _status(server: Served, key: str) -> int:
    response = httpx.post(
        f"{server.base}/graphql", json=QUERY, headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code


def _refused_within_bound(server: Served, key: str) -> None:
    deadline = time.monotonic() + HANG_BOUND_S
    while _status(server, key) != 401:
        assert time.monotonic() < deadline, f"still accepted by {server.base}"
        time.sleep(0.05)


async def test_a_key_revoked_by_the_cli_is_refused_by_every_server(
    database_url: str,
    tmp_path: Path,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    name = f"leaving-{uuid.uuid4().hex[:8]}"
    async with sessionmaker.begin() as session:
        key = await create_api_key(session, name, frozenset({Scope.READ}))
        other = await create_api_key(session, "staying", frozenset({Scope.READ}))
    with several(database_url, tmp_path, 2, CAMPAIGN_AUTH_CACHE_S="300") as servers:
        for server in servers:
            assert _status(server, key) == 200  # now in each process's cache for 300 s
            assert _status(server, other) == 200
        _cli(database_url, "api-key", "revoke", name)
        for server in servers:
            _refused_within_bound(server, key)
            assert _status(server, other) == 200
