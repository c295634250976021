"""Side by side with PostGraphile 4 and 5 on the nested reads of issue 29 (Q1, Q2).

    .venv/bin/python -m bench.vs_postgraphile [--rounds 2] [--seconds 20] [--warmup 5]
        [--clients 10] [--workers N] [--scale 1|10] [--port 8093]

Installs Node 24, PostGraphile 4 and 5 and autocannon into a cache folder outside the
repository (``bench.peers``), builds or reuses the bench database (our migrations and the data
set of ``bench.read_graph``; ``--scale 10`` has ten times the templates, so ten times every
table, and the same answers, in a database of its own), and starts the three servers on it:
PostGraphile 4 and 5 one Node process each, ours ``campaign-api serve`` in production mode.
It refuses to time unless the three answer the same ids in the same order. Then, for each
query, rounds of PostGraphile 4, PostGraphile 5, ours, interleaved (autocannon, kept-alive
connections, a warm-up before each measured run), and one run each at concurrency 1 for the
unloaded latency. Each run prints req/s, p50 and p99, and the CPU time the server's processes
spent per answer (PostgreSQL's not included); each query, the ratio of our summed req/s to the
faster peer's with its spread over rounds, and our statements per request. The queries and
PostGraphile 5's configuration are in bench/postgraphile/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.cli.serve import cores_available
from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from bench import peers
from bench.common import ROOT, bench_database_url, build_dataset_once, server_process
from bench.cpu import tree_cpu_s
from bench.read_graph import SHAPE, statements_per_request

QUERY_DIR = Path(__file__).resolve().parent / "postgraphile"
SERVERS = ("PostGraphile 4", "PostGraphile 5", "ours")
PEERS = SERVERS[:2]
STATEMENTS = re.compile(
    r'^campaign_sql_statements_per_request_(sum|count)\{route="/graphql"\} (\S+)$', re.M
)


@dataclass(frozen=True)
class Query:
    label: str
    ours: dict[str, Any]
    pgl: dict[str, Any]


@dataclass(frozen=True)
class Bench:
    """What the database gives the run: a read key for the load, an admin key for /metrics,
    and Q2's instance (the newest, as in bench.read_graph)."""

    read_key: str
    admin_key: str
    instance_id: str
    server_version: str


async def prepare(url: str, scale: int) -> Bench:
    """Migrate, build the data set when the database has none, make this run's keys."""
    await asyncio.to_thread(migrate.upgrade, url)
    shape = dataclasses.replace(SHAPE, templates=SHAPE.templates * scale)
    settings = Settings(database_url=url, statement_timeout_ms=0)  # the build takes a while
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await build_dataset_once(connection, shape)
            await connection.execute(text("DELETE FROM api_keys WHERE name LIKE 'bench-pgl-%'"))
        async with create_sessionmaker(engine).begin() as session:
            read_key = await create_api_key(session, "bench-pgl-read", frozenset({Scope.READ}))
            admin_key = await create_api_key(
                session, "bench-pgl-admin", frozenset({Scope.READ, Scope.ADMIN})
            )
        async with engine.connect() as connection:
            instance_id = await connection.scalar(
                text("SELECT id::text FROM campaign_instances ORDER BY created_at DESC LIMIT 1")
            )
            version = await connection.scalar(text("SHOW server_version"))
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return Bench(read_key, admin_key, instance_id, version)


def queries(instance_id: str) -> list[Query]:
    def read(name: str) -> str:
        return (QUERY_DIR / name).read_text()

    variables = {"id": instance_id}
    return [
        Query(
            "Q1 dashboard", {"query": read("q1_project.graphql")}, {"query": read("q1_pgl.graphql")}
        ),
        Query(
            "Q2 instance detail",
            {"query": read("q2_project.graphql"), "variables": variables},
            {"query": read("q2_pgl.graphql"), "variables": variables},
        ),
    ]


def ids(value: Any) -> Iterator[str]:
    """Every ``id`` in the response, in document order: the rows' UUIDs on all three servers
    (PostGraphile's v4-style schema keeps the column as ``id`` and its own global id apart, as
    ``nodeId``, which the queries do not select)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                yield item
            else:
                yield from ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from ids(item)


def verify(runner: Runner, query: Query) -> int:
    """The three answer the same ids in the same order, without errors; returns how many."""
    seen: dict[str, list[str]] = {}
    for server in SERVERS:
        response = runner.post(server, query)
        answer = response.json()
        if response.status_code != 200 or answer.get("errors") or not answer.get("data"):
            raise SystemExit(f"{query.label}: {server} answered {response.text[:500]}")
        seen[server] = list(ids(answer["data"]))
    reference = seen["ours"]
    if not reference:
        raise SystemExit(f"{query.label}: no ids in the answers (an empty database?)")
    for server, found in seen.items():
        if found != reference:
            at = next(
                (i for i, (a, b) in enumerate(zip(found, reference, strict=False)) if a != b),
                min(len(found), len(reference)),
            )
            raise SystemExit(
                f"{query.label}: {server} answers {len(found)} ids, ours {len(reference)};"
                f" first difference at position {at}. Not timing different answers."
            )
    return len(reference)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores ({cores_available()} available to this process), {model},"
        f" {memory_kib / 1024**2:.0f} GiB"
    )


def load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        " (uncommitted changes)" if git("status", "--porcelain") else ""
    )


def spread(values: list[float], unit: str = "", digits: int = 1) -> str:
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}{unit}"
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20, help="each measured run")
    parser.add_argument("--warmup", type=float, default=5, help="before each measured run")
    parser.add_argument("--clients", type=int, default=10, help="autocannon's -c")
    parser.add_argument(
        "--workers", type=int, default=cores_available(), help="ours (default: serve's auto)"
    )
    parser.add_argument("--scale", type=int, choices=(1, 10), default=1)
    parser.add_argument(
        "--port", type=int, default=8093, help="ours; PostGraphile 4 and 5 on the next two"
    )
    args = parser.parse_args()
    # Our in-process requests (statements_per_request) and the server would log every request.
    os.environ["CAMPAIGN_LOG_LEVEL"] = "warning"
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    tools = peers.install()
    name = "campaign_bench_pgl" if args.scale == 1 else f"campaign_bench_pgl_x{args.scale}"
    url = bench_database_url(name)
    bench = asyncio.run(prepare(url, args.scale))
    node_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    reads = queries(bench.instance_id)
    counts = asyncio.run(
        statements_per_request(url, bench.read_key, {q.label: q.ours for q in reads})
    )

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; load average at start {load_average()}")
    versions = {"campaign-api": commit(), "Python": platform.python_version()}
    versions |= {"PostgreSQL": bench.server_version} | tools.versions()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"database {name}: {SHAPE.templates * args.scale} templates x "
        f"{SHAPE.instances_per_template} instances x {SHAPE.enrollments_per_instance} "
        f"enrollments x {SHAPE.events_per_enrollment} events; ours: {args.workers} workers, "
        f"production mode; autocannon -c {args.clients}, kept-alive, {args.warmup:g} s warm-up,"
        f" {args.seconds:g} s measured, rounds: {args.rounds}"
    )

    headers = {
        "PostGraphile 4": {},
        "PostGraphile 5": {},
        "ours": {"authorization": f"Bearer {bench.read_key}"},
    }
    with ExitStack() as servers:
        production = {"CAMPAIGN_ENVIRONMENT": "production"}
        base, ours = servers.enter_context(server_process(url, args.port, args.workers, production))
        served = {
            "PostGraphile 4": servers.enter_context(
                peers.pgl4_server(tools, node_url, args.port + 1)
            ),
            "PostGraphile 5": servers.enter_context(
                peers.pgl5_server(tools, node_url, args.port + 2)
            ),
            "ours": peers.Served(f"{base}/graphql", ours.pid),
        }
        runner = Runner(tools, served, headers, base, bench.admin_key)
        for query in reads:
            found = verify(runner, query)
            print(f"{query.label}: the three servers answer the same {found} ids in the same order")
        for query in reads:
            run_query(runner, query, args, counts[query.label])
    print(f"load average at the end {load_average()}")


@dataclass(frozen=True)
class Runner:
    """The three servers, started, and how to load them."""

    tools: peers.Toolchain
    served: dict[str, peers.Served]
    headers: dict[str, dict[str, str]]
    ours_base: str
    admin_key: str

    def post(self, server: str, query: Query) -> httpx.Response:
        body = query.ours if server == "ours" else query.pgl
        return httpx.post(
            self.served[server].url, json=body, headers=self.headers[server], timeout=60
        )

    def load(
        self, server: str, query: Query, clients: int, seconds: float
    ) -> tuple[peers.Load, float]:
        """autocannon on one server, and the CPU milliseconds its processes (workers included,
        not PostgreSQL's) spent per answer: unlike req/s, little moved by what else runs."""
        body = query.ours if server == "ours" else query.pgl
        target = self.served[server]
        before = tree_cpu_s(target.pid)
        result = peers.autocannon(
            self.tools, target.url, body, self.headers[server], clients, seconds
        )
        return result, (tree_cpu_s(target.pid) - before) * 1000 / max(result.requests, 1)

    def statements_so_far(self) -> tuple[float, float]:
        """Our server's own count of statements run by /graphql requests: (sum, requests)."""
        response = httpx.get(
            f"{self.ours_base}/metrics",
            headers={"authorization": f"Bearer {self.admin_key}"},
            timeout=10,
        )
        response.raise_for_status()
        found = {kind: float(value) for kind, value in STATEMENTS.findall(response.text)}
        return found.get("sum", 0.0), found.get("count", 0.0)


def run_query(runner: Runner, query: Query, args: argparse.Namespace, statements: int) -> None:
    """The interleaved rounds at ``--clients``, then one run each at concurrency 1; prints as
    it goes (a long run shows where it is)."""
    print(f"\n{query.label}, c={args.clients}")
    rps: dict[str, list[float]] = {server: [] for server in SERVERS}
    under_load: list[float] = []
    for round_number in range(1, args.rounds + 1):
        for server in SERVERS:
            runner.load(server, query, args.clients, args.warmup)
            before = runner.statements_so_far() if server == "ours" else None
            result, cpu_ms = runner.load(server, query, args.clients, args.seconds)
            if before is not None:
                after = runner.statements_so_far()
                under_load.append((after[0] - before[0]) / max(after[1] - before[1], 1))
            rps[server].append(result.rps)
            print(f"  round {round_number}  {line(server, result, cpu_ms)}")
    totals = {server: sum(rps[server]) for server in PEERS}
    faster = max(totals, key=totals.__getitem__)
    ratios = [o / f for o, f in zip(rps["ours"], rps[faster], strict=True)]
    for server in SERVERS:
        print(f"  {server:<15} {spread(rps[server], ' req/s')}")
    print(
        f"  ours / the faster ({faster}): {sum(rps['ours']) / totals[faster]:.2f}x"
        f" of summed req/s; by round {spread(ratios, 'x', 2)}"
    )
    print(
        f"  ours: {statements} statements per request (one request, in process);"
        f" {spread(under_load, '', 1)} per /graphql request under this load (the server's"
        " campaign_sql_statements_per_request)"
    )

    print(f"{query.label}, c=1 ({args.seconds:g} s each)")
    p50: dict[str, float] = {}
    for server in SERVERS:
        result, cpu_ms = runner.load(server, query, 1, args.seconds)
        p50[server] = result.p50_ms
        print(f"  {line(server, result, cpu_ms)}")
    peer = min(PEERS, key=p50.__getitem__)
    print(
        f"  p50 ours / the faster ({peer}): {p50['ours'] / max(p50[peer], 1e-9):.2f}x"
        f" ({p50['ours']:.0f} ms against {p50[peer]:.0f} ms)"
    )


def line(server: str, result: peers.Load, cpu_ms: float) -> str:
    return (
        f"{server:<15} {result.rps:7.1f} req/s  p50 {result.p50_ms:6.0f} ms"
        f"  p99 {result.p99_ms:6.0f} ms  CPU {cpu_ms:5.1f} ms/req  n={result.requests}"
        f" bad={result.bad}  {result.bytes_per_response / 1024:.0f} KiB/resp"
        f"  load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; every server this run started is stopped") from None
