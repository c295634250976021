"""How long a revoked key keeps working: from the revoking commit to the first refusal, on each
of two server processes that hold the key in their caches.

    .venv/bin/python -m bench.revocation [--revocations 50] [--workers 1]

Starts two `campaign-api serve` processes on a fresh database `campaign_bench_revocation`, with
the key cache's TTL at 300 s (so only the notification can end a key early). For each round it
creates a key, has both servers verify it (now cached), revokes it in one transaction from this
process, and from the moment the commit returns polls both servers back to back until each
refuses it. Reports p50, p99 and max per server: the figure includes one request's round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections.abc import Sequence

import httpx

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key, revoke_api_key
from app.settings import Settings
from bench.common import bench_database_url, server_process
from testkit.servers import free_port

QUERY = {"query": "{ templates { totalCount } }"}
GIVE_UP_S = 30.0


async def _status(client: httpx.AsyncClient, base: str, key: str) -> int:
    response = await client.post(
        f"{base}/graphql", json=QUERY, headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code


async def _until_refused(client: httpx.AsyncClient, base: str, key: str, since: float) -> float:
    while True:
        status = await _status(client, base, key)
        if status != 200:
            assert status == 401, status
            return time.perf_counter() - since
        if time.perf_counter() - since > GIVE_UP_S:
            raise RuntimeError(f"{base} still accepts a key revoked {GIVE_UP_S} s ago")


async def _measure(database_url: str, bases: Sequence[str], rounds: int) -> list[list[float]]:
    engine = create_engine(Settings(database_url=database_url, pool_size=2))
    sessions = create_sessionmaker(engine)
    delays: list[list[float]] = [[] for _ in bases]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(rounds):
                async with sessions.begin() as session:
                    key = await create_api_key(session, f"bench-{n}", frozenset({Scope.READ}))
                for base in bases:
                    assert await _status(client, base, key) == 200
                async with sessions.begin() as session:
                    await revoke_api_key(session, f"bench-{n}")
                committed = time.perf_counter()
                found = await asyncio.gather(
                    *(_until_refused(client, base, key, committed) for base in bases)
                )
                for server, delay in enumerate(found):
                    delays[server].append(delay)
    finally:
        await engine.dispose()
    return delays


def _ms(values: list[float], q: float) -> str:
    """The nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    return f"{ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revocations", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="workers per server")
    args = parser.parse_args()
    database_url = bench_database_url("campaign_bench_revocation", fresh=True)
    migrate.upgrade(database_url)
    env = {
        "CAMPAIGN_AUTH_CACHE_S": "300",
        "CAMPAIGN_AUTH_FAILURES_PER_MINUTE": "100000000",
        "CAMPAIGN_POOL_SIZE": "2",
        "CAMPAIGN_MAX_OVERFLOW": "2",
    }
    with (
        server_process(database_url, free_port(), args.workers, env) as (first, _),
        server_process(database_url, free_port(), args.workers, env) as (second, _),
    ):
        delays = asyncio.run(_measure(database_url, [first, second], args.revocations))
    print(f"{args.revocations} revocations, 2 servers x {args.workers} worker(s), TTL 300 s")
    for name, values in zip(("server 1", "server 2"), delays, strict=True):
        print(
            f"{name}: p50 {_ms(values, 0.5)} ms, p99 {_ms(values, 0.99)} ms,"
            f" max {max(values) * 1000:.1f} ms, mean {statistics.mean(values) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
