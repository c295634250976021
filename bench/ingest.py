"""Benchmark webhook ingestion from a second process: a realistic event mix with 5% duplicates,
in batches of 1 and of 100, against `campaign-api serve`; then the counters check, and the same
machine's PostgreSQL single-row insert rate (pgbench, with 1 client and with as many as the
batched load) for comparison, as ratios.

The load comes from wrk (a C load generator, `apt-get install wrk`): a Python client spends
more time per request than the server does, and would measure itself. Events stored are
counted in the database.

    .venv/bin/python -m bench.ingest [--workers 2] [--clients 16] [--connections 32] [--seconds 30]
                                     [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.services.ingestion.counters import check_counters
from app.settings import Settings
from bench.common import bench_database_url, server_process
from bench.cpu import (
    postgres_cpu_s,
    postgres_process_count,
    tree_cpu_s,
    wait_for_postgres_processes,
)

MIX = (
    ("sent", 30),
    ("delivered", 28),
    ("opened", 25),
    ("clicked", 8),
    ("replied", 3),
    ("bounced", 2),
    ("unsubscribed", 1),
    ("profile_visited", 2),
    ("connection_requested", 1),
)
ENROLLMENTS = 5_000


async def prepare(url: str) -> tuple[str, list[str]]:
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with create_sessionmaker(engine).begin() as session:
            await session.execute(text("DELETE FROM api_keys WHERE name = 'bench-ingest'"))
            key = await create_api_key(session, "bench-ingest", frozenset({Scope.WEBHOOKS}))
            if not await session.scalar(text("SELECT count(*) FROM enrollments")):
                template = await session.scalar(
                    text(
                        "INSERT INTO campaign_templates (name, type)"
                        " VALUES ('ingest bench', 'multi_channel') RETURNING id"
                    )
                )
                await session.execute(
                    text(
                        "INSERT INTO email_steps (template_id, step_number, body, delay_hours)"
                        " SELECT :t, g, 'Hello {{first_name}}, step ' || g, 24"
                        " FROM generate_series(1, 3) g"
                    ),
                    {"t": template},
                )
                await session.execute(
                    text(
                        "INSERT INTO campaign_instances (template_id, name, status, started_at)"
                        " SELECT :t, 'ingest ' || g, 'active', now() FROM generate_series(1, 4) g"
                    ),
                    {"t": template},
                )
                await session.execute(
                    text(
                        "INSERT INTO enrollments (instance_id, contact_id, status)"
                        " SELECT i.id, i.id::text || '-' || g, 'active'"
                        " FROM campaign_instances i CROSS JOIN generate_series(1, :n) g"
                    ),
                    {"n": ENROLLMENTS // 4},
                )
                await session.execute(
                    text("UPDATE campaign_instances SET total_enrolled = :n"),
                    {"n": ENROLLMENTS // 4},
                )
        async with engine.connect() as connection:
            ids = list(await connection.scalars(text("SELECT id::text FROM enrollments")))
    finally:
        await engine.dispose()
    return key, ids


_WRK_SCRIPT = """
ids = {%(ids)s}
types = {%(types)s}
batch = %(batch)d
recent = {}
remembered = 0
counter = 0
local function event()
  counter = counter + 1
  if remembered > 0 and math.random() < 0.05 then
    return recent[math.random(remembered)]
  end
  local body = string.format(
      '{"enrollment_id":"%%s","event_type":"%%s","provider":"api","provider_event_id":"%(run)s-%%d",'
      .. '"step_number":%%d,"occurred_at":"%%s","metadata":{"source":"bench"}}',
      ids[math.random(#ids)], types[math.random(#types)], counter,
      math.random(3), os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ"))
  if remembered < 500 then
    remembered = remembered + 1
    recent[remembered] = body
  else
    recent[math.random(500)] = body
  end
  return body
end
request = function()
  local body
  if batch == 1 then
    body = event()
  else
    local events = {}
    for i = 1, batch do events[i] = event() end
    body = '{"events":[' .. table.concat(events, ",") .. ']}'
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50: str
    p99: str
    non_2xx: int


def wrk_events(
    base: str, key: str, ids: list[str], batch: int, connections: int, seconds: float
) -> WrkResult | None:
    """Requests of ``batch`` events (the realistic mix, 5% repeats) from wrk, a C load
    generator that leaves the cores to the server; None when wrk is not installed."""
    binary = shutil.which("wrk")
    if binary is None:
        return None
    types = ", ".join(f'"{t}"' for t, weight in MIX for _ in range(weight))
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "ingest.lua"
        script.write_text(
            _WRK_SCRIPT
            % {
                "ids": ", ".join(f'"{i}"' for i in ids[:2000]),
                "types": types,
                "key": key,
                "batch": batch,
                # wrk's random numbers repeat from run to run: the ids must not.
                "run": uuid.uuid4().hex,
            }
        )
        options = ["-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script)]
        done = subprocess.run(
            [binary, *options, f"{base}/webhooks/events"],
            check=True,
            capture_output=True,
            text=True,
        )
    lines = [line.split() for line in done.stdout.splitlines()]
    value = {words[0]: words[1:] for words in lines if words}
    return WrkResult(
        requests_per_s=float(value["Requests/sec:"][0]),
        p50=value["50%"][0],
        p99=value["99%"][0],
        non_2xx=int(value.get("Non-2xx", ["", "", "0"])[-1]),
    )


async def stored_events(url: str) -> int:
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM campaign_events")))
    finally:
        await engine.dispose()


def _cpu_line(
    before: tuple[float | None, float], after: tuple[float | None, float], events: int
) -> str:
    server_ms = (after[1] - before[1]) * 1000 / max(events, 1)
    if before[0] is None or after[0] is None:
        return f"server {server_ms:.3f} ms (the database runs elsewhere)"
    database_ms = (after[0] - before[0]) * 1000 / max(events, 1)
    return f"database {database_ms:.3f} ms, server {server_ms:.3f} ms"


def pgbench_insert_rate(url: str, clients: int, seconds: int) -> tuple[float, float | None] | None:
    """Single-row INSERTs per second by pgbench on the same server, and the database's CPU
    milliseconds per insert when it runs here; None without pgbench."""
    binary = shutil.which("pgbench")
    if binary is None:
        return None
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        [
            "psql",
            dsn,
            "-qc",
            "SET client_min_messages = warning;"
            " CREATE TABLE IF NOT EXISTS pgbench_insert (id bigserial PRIMARY KEY, a text,"
            " b int, at timestamptz DEFAULT now())",
        ],
        check=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "insert.sql"
        script.write_text("INSERT INTO pgbench_insert (a, b) VALUES (md5(random()::text), 1);\n")
        processes = postgres_process_count()
        cpu_before = postgres_cpu_s()
        done = subprocess.run(
            [
                binary,
                "-n",
                "-c",
                str(clients),
                "-j",
                str(min(2, clients)),
                "-T",
                str(seconds),
                "-f",
                str(script),
                dsn,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        wait_for_postgres_processes(processes)
        cpu_after = postgres_cpu_s()
    for line in done.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
            if cpu_before is None or cpu_after is None:
                return tps, None
            return tps, (cpu_after - cpu_before) * 1000 / (tps * seconds)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16, help="batches of 100, and pgbench")
    parser.add_argument("--connections", type=int, default=32, help="single events")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5, help="seconds before each load")
    parser.add_argument("--port", type=int, default=8093)
    args = parser.parse_args()

    # Fresh every run: on a database that earlier runs filled, most events find their outcome
    # counted and their enrollment finished already, and cost the database far less.
    url = bench_database_url("campaign_bench_ingest", fresh=True)
    key, enrollment_ids = asyncio.run(prepare(url))
    print(
        f"workers={args.workers} clients={args.clients} seconds={args.seconds} warmup={args.warmup}"
    )
    stored_per_s: dict[int, float] = {}
    with server_process(url, args.port, args.workers) as (base, server):
        for batch, connections in ((1, args.connections), (100, args.clients)):
            if args.warmup:  # connections opened, caches and statement plans warm; not counted
                wrk_events(base, key, enrollment_ids, batch, connections, args.warmup)
            before = asyncio.run(stored_events(url))
            cpu_before = postgres_cpu_s(), tree_cpu_s(server.pid)
            wrk = wrk_events(base, key, enrollment_ids, batch, connections, int(args.seconds))
            if wrk is None:
                print("skipped: wrk is not installed (apt-get install wrk)")
                break
            cpu_after = postgres_cpu_s(), tree_cpu_s(server.pid)
            stored = asyncio.run(stored_events(url)) - before
            stored_per_s[batch] = stored / int(args.seconds)
            print(
                f"{batch} event(s) per request, {connections} connections:"
                f" {wrk.requests_per_s:,.1f} req/s  p50 {wrk.p50}  p99 {wrk.p99}"
                f"  non-2xx={wrk.non_2xx}  events stored/s={stored_per_s[batch]:,.0f}"
            )
            print(f"  CPU per stored event: {_cpu_line(cpu_before, cpu_after, stored)}")

    async def counters() -> int:
        engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
        try:
            async with create_sessionmaker(engine).begin() as session:
                return len(await check_counters(session))
        finally:
            await engine.dispose()

    print(f"counters check: {asyncio.run(counters())} differences")
    # The reference ("about 5,000 inserts/s" on 2 cores) is pgbench's default of one
    # client; the same concurrency as the load is the stricter comparison. Both are printed.
    for clients in sorted({1, args.clients}):
        pgbench = pgbench_insert_rate(url, clients, 15)
        if pgbench is None:
            print("skipped: pgbench is not installed or reported no rate")
            break
        tps, database_ms = pgbench
        ratio = f"  single events: {stored_per_s[1] / tps:.1%}" if 1 in stored_per_s else ""
        print(f"pgbench single-row INSERT, {clients} client(s): {tps:,.0f} tps{ratio}")
        if database_ms is not None:
            print(f"  database CPU per insert: {database_ms:.3f} ms")


if __name__ == "__main__":
    main()
