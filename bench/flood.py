"""Flood the webhook endpoint and the dashboard query at once, and watch the server's memory.

    .venv/bin/python -m bench.flood [--workers 2] [--seconds 60] [--webhook-clients 16]
                                    [--dashboard-clients 4] [--warmup 10]

Builds (once) a database `campaign_bench_flood` (10 templates, 30 instances, 3,000 enrollments,
9,000 events), starts `campaign-api serve` on it with the rate limit raised out of the way, and
from this process sends single-event webhooks (fresh event ids, 5% repeats) and dashboard
queries side by side. Reports, per stream, throughput, p50/p99 latency and answers by status,
and the server's memory: the resident set of its whole process tree (supervisor and workers),
sampled every second from /proc, after the warm-up, at its peak and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from bench.common import bench_database_url, server_process
from testkit.examples import example
from testkit.factories import Shape, build_dataset

SHAPE = Shape(
    templates=10, instances_per_template=3, enrollments_per_instance=100, events_per_enrollment=3
)
DASHBOARD = example("dashboard.graphql")
EVENT_TYPES = ("sent", "delivered", "opened", "opened", "clicked", "replied")


async def prepare(url: str) -> tuple[str, list[str]]:
    """Migrate, build the dataset when absent; return (API key, enrollment ids)."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with engine.begin() as connection:
            if not await connection.scalar(text("SELECT count(*) FROM campaign_templates")):
                await build_dataset(connection, SHAPE, prefix="flood")
            await connection.execute(text("DELETE FROM api_keys WHERE name = 'bench-flood'"))
        async with create_sessionmaker(engine).begin() as session:
            scopes = frozenset({Scope.READ, Scope.WEBHOOKS})
            key = await create_api_key(session, "bench-flood", scopes)
        async with engine.connect() as connection:
            ids = list(await connection.scalars(text("SELECT id::text FROM enrollments")))
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return key, ids


@dataclass
class Tally:
    """Answers of one stream: latencies and a count per status (or transport error)."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def line(self, label: str, seconds: float) -> str:
        ordered = sorted(self.latencies_ms) or [0.0]

        def percentile(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{label:<10} {len(self.latencies_ms) / seconds:8.1f} req/s"
            f"  p50 {percentile(50):7.1f} ms  p99 {percentile(99):7.1f} ms  [{by_status}]"
        )


async def flood(
    request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    clients: int,
    seconds: float,
) -> Tally:
    """``clients`` closed loops sending ``request`` until the time is up."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status = str((await request(client)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            tally.statuses[status] += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(loop(client) for _ in range(clients)))
    return tally


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _rss_mib(root: int) -> float:
    total_kib = 0
    for pid in _tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


class MemoryWatch:
    """Samples the tree's resident memory every second on a thread of its own."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - started, _rss_mib(self.root)))
            self._stop.wait(1.0)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.samples[-1][0] + 1 if self.samples else 0, _rss_mib(self.root)))

    def report(self, warmup: float) -> str:
        after = [mib for at, mib in self.samples if at >= warmup] or [self.samples[-1][1]]
        return (
            f"server RSS (process tree): start {self.samples[0][1]:.0f} MiB,"
            f" after {warmup:.0f} s warm-up {after[0]:.0f} MiB, peak {max(after):.0f} MiB,"
            f" end {after[-1]:.0f} MiB (end - after warm-up: {after[-1] - after[0]:+.0f} MiB)"
        )


class Events:
    """Single generic events with fresh ids; about 5% repeat a recent one (a provider retry)."""

    def __init__(self, enrollment_ids: list[str]) -> None:
        self.enrollment_ids = enrollment_ids
        self.recent: deque[dict[str, Any]] = deque(maxlen=500)

    def next(self) -> dict[str, Any]:
        if self.recent and random.random() < 0.05:
            return random.choice(self.recent)
        body = {
            "enrollment_id": random.choice(self.enrollment_ids),
            "event_type": random.choice(EVENT_TYPES),
            "provider_event_id": f"flood-{uuid.uuid4().hex}",
            "step_number": random.randint(1, 3),
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        self.recent.append(body)
        return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--webhook-clients", type=int, default=16)
    parser.add_argument("--dashboard-clients", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=10, help="seconds before memory counts")
    parser.add_argument("--port", type=int, default=8094)
    args = parser.parse_args()

    url = bench_database_url("campaign_bench_flood")
    key, enrollment_ids = asyncio.run(prepare(url))
    events = Events(enrollment_ids)
    headers = {"authorization": f"Bearer {key}"}
    # The per-key limiter would refuse most of a flood from one key: that is not under test.
    unlimited = {"CAMPAIGN_RATE_LIMIT_PER_MINUTE": "100000000"}
    with server_process(url, args.port, args.workers, unlimited) as (base, process):

        def webhook(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return client.post(f"{base}/webhooks/events", json=events.next(), headers=headers)

        def dashboard(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return client.post(f"{base}/graphql", json={"query": DASHBOARD}, headers=headers)

        async def both() -> tuple[Tally, Tally]:
            return await asyncio.gather(
                flood(webhook, args.webhook_clients, args.seconds),
                flood(dashboard, args.dashboard_clients, args.seconds),
            )

        print(
            f"workers={args.workers} seconds={args.seconds} webhook clients="
            f"{args.webhook_clients} dashboard clients={args.dashboard_clients}"
        )
        with MemoryWatch(process.pid) as memory:
            webhooks, dashboards = asyncio.run(both())
        print(webhooks.line("webhooks", args.seconds))
        print(dashboards.line("dashboard", args.seconds))
        print(memory.report(args.warmup))
        server_errors = sum(
            n for t in (webhooks, dashboards) for s, n in t.statuses.items() if s.startswith("5")
        )
        print(f"5xx answers: {server_errors}")


if __name__ == "__main__":
    main()
