"""What the live-updates triggers (migration 0009) cost webhook ingestion: the same server and
database, rounds alternating with the triggers enabled and disabled (A/B/A/B… in one run, so
the noise of a shared machine falls on both), for requests of 1 and of 100 events: events
stored per second, and CPU milliseconds per stored event of the database (the embedded
cluster's processes, when DATABASE_URL is unset) and of the server (less sensitive to what
else the machine runs than a rate).

    .venv/bin/python -m bench.live_write_cost [--rounds 3] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import ROOT, bench_database_url, server_process
from bench.cpu import tree_cpu_s
from bench.ingest import prepare, stored_events, wrk_events

TRIGGERS = (
    ("campaign_events", "tr_campaign_events_live_insert"),
    ("campaign_events", "tr_campaign_events_live_update"),
    ("enrollments", "tr_enrollments_live_update"),
    ("dispatches", "tr_dispatches_live_insert"),
    ("dispatches", "tr_dispatches_live_update"),
    ("instance_transitions", "tr_instance_transitions_live_insert"),
)


async def set_triggers(url: str, enabled: bool) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        verb = "ENABLE" if enabled else "DISABLE"
        for table, trigger in TRIGGERS:
            await connection.execute(f"ALTER TABLE {table} {verb} TRIGGER {trigger}")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args()

    url = bench_database_url("campaign_bench_live_write", fresh=True)
    key, ids = asyncio.run(prepare(url))
    postmaster = ROOT / ".data" / "bench-postgres" / "postmaster.pid"
    database_pid = int(postmaster.read_text().split()[0]) if postmaster.exists() else None
    rates: dict[tuple[int, bool], list[float]] = {}
    database_ms: dict[tuple[int, bool], list[float]] = {}
    server_ms: dict[tuple[int, bool], list[float]] = {}
    with server_process(url, args.port, args.workers) as (base, server):
        for batch, connections in ((1, args.connections), (100, args.clients)):
            wrk_events(base, key, ids, batch, connections, 3)  # warm-up, not counted
            for _ in range(args.rounds):
                for enabled in (True, False):
                    asyncio.run(set_triggers(url, enabled))
                    stored = asyncio.run(stored_events(url))
                    cpu = tree_cpu_s(database_pid) if database_pid else 0.0, tree_cpu_s(server.pid)
                    result = wrk_events(base, key, ids, batch, connections, args.seconds)
                    if result is None:
                        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
                    events = asyncio.run(stored_events(url)) - stored
                    used = tree_cpu_s(database_pid) if database_pid else 0.0, tree_cpu_s(server.pid)
                    rates.setdefault((batch, enabled), []).append(events / args.seconds)
                    database_ms.setdefault((batch, enabled), []).append(
                        (used[0] - cpu[0]) * 1000 / max(events, 1)
                    )
                    server_ms.setdefault((batch, enabled), []).append(
                        (used[1] - cpu[1]) * 1000 / max(events, 1)
                    )
        asyncio.run(set_triggers(url, True))
    for batch in (1, 100):
        on, off = (statistics.median(rates[(batch, e)]) for e in (True, False))
        db_on, db_off = (statistics.median(database_ms[(batch, e)]) for e in (True, False))
        sv_on, sv_off = (statistics.median(server_ms[(batch, e)]) for e in (True, False))
        print(
            f"{batch} event(s) per request (medians of {args.rounds} rounds each):"
            f" {on:,.0f} events stored/s with the triggers, {off:,.0f} without"
            f" ({(on - off) / off:+.1%}); database CPU per event {db_on:.3f} ms vs"
            f" {db_off:.3f} ms ({(db_on - db_off) / db_off:+.1%}); server CPU per event"
            f" {sv_on:.3f} ms vs {sv_off:.3f} ms"
        )
        print(
            "  rates with: "
            + ", ".join(f"{r:,.0f}" for r in rates[(batch, True)])
            + "; without: "
            + ", ".join(f"{r:,.0f}" for r in rates[(batch, False)])
        )


if __name__ == "__main__":
    main()
