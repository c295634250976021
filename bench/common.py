"""Shared benchmark plumbing: a bench database, a server to hit, and a closed-loop load."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.embedded import start_embedded_postgres
from app.settings import normalize_database_url
from testkit.factories import Shape, build_dataset

ROOT = Path(__file__).resolve().parent.parent


def bench_database_url(name: str, fresh: bool = False) -> str:
    """``name`` on DATABASE_URL's server (or the embedded one), created when missing, or
    dropped and created again when ``fresh``."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    server = (
        normalize_database_url(configured)
        if configured
        else start_embedded_postgres(ROOT / ".data" / "bench-postgres")
    )

    async def create() -> None:
        admin = make_url(server).set(drivername="postgresql", database="postgres")
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            if fresh:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@contextmanager
def running_server(
    database_url: str, port: int, workers: int, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start ``campaign-api serve`` on the bench database; yield its base URL."""
    with server_process(database_url, port, workers, extra_env) as (base, _):
        yield base


@contextmanager
def server_process(
    database_url: str, port: int, workers: int, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``running_server``, also yielding the process (to watch its memory, for one)."""
    env = os.environ | {
        "DATABASE_URL": database_url,
        "CAMPAIGN_LOG_LEVEL": "warning",
        # The load comes from one address and one key: the rate limits would cap the benchmark.
        "CAMPAIGN_RATE_LIMIT_PER_MINUTE": "100000000",
        "CAMPAIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE": "100000000",
        # bench.bulk_enroll sends 10,000 contacts with personalization: about 1.1 MB.
        "CAMPAIGN_GRAPHQL_MAX_BYTES": str(8 * 1024 * 1024),
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "campaign-api"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env | dict(extra_env or {}),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready")
        _wait_for_listeners(port, workers)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening_sockets(port: int) -> int:
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for fields in map(str.split, lines)
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A"
    )


def _wait_for_listeners(port: int, workers: int) -> None:
    """Every worker listens on its own socket: /readyz answered by the first one to start does
    not mean the others are up, and a load started before them would land on one worker."""
    if workers < 2:
        return
    deadline = time.monotonic() + 60
    while _listening_sockets(port) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {workers} workers listen on port {port}")
        time.sleep(0.2)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, label: str) -> str:
        return (
            f"{label:<22} {self.rps:8.1f} req/s  p50 {self.percentile(50):7.1f} ms"
            f"  p99 {self.percentile(99):7.1f} ms  n={self.requests} errors={self.errors}"
        )


async def closed_loop(
    request: Callable[[httpx.AsyncClient], Awaitable[bool]],
    clients: int,
    seconds: float,
    keepalive: bool = True,
) -> LoadResult:
    """``clients`` concurrent loops, each sending its next request when the last one answered.

    Without ``keepalive`` every request opens a connection: a kept-alive connection stays with
    the worker that accepted it, so a few long runs can pin most clients on one worker."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await request(client)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok

    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients if keepalive else 0
    )
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, latencies)


async def build_dataset_once(connection: AsyncConnection, shape: Shape) -> None:
    """The bench data set, built only into a database without templates (minutes at 10x)."""
    if not await connection.scalar(text("SELECT count(*) FROM campaign_templates")):
        started = time.perf_counter()
        await build_dataset(connection, shape, prefix="bench")
        print(f"data set {shape} built in {time.perf_counter() - started:.0f} s")
