"""What the live-updates triggers (migration 0009) cost webhook ingestion: the same server and
database, rounds alternating with the triggers enabled and disabled (A/B/A/B… in one run, so
the noise of a shared machine falls on both), for requests of 1 and of 100 events.

    .venv/bin/python -m bench.live_write_cost [--rounds 3] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import bench_database_url, server_process
from bench.ingest import prepare, wrk_events

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
    rates: dict[tuple[int, bool], list[float]] = {}
    with server_process(url, args.port, args.workers) as (base, _server):
        for batch, connections in ((1, args.connections), (100, args.clients)):
            wrk_events(base, key, ids, batch, connections, 3)  # warm-up, not counted
            for _ in range(args.rounds):
                for enabled in (True, False):
                    asyncio.run(set_triggers(url, enabled))
                    result = wrk_events(base, key, ids, batch, connections, args.seconds)
                    if result is None:
                        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
                    rates.setdefault((batch, enabled), []).append(result.requests_per_s * batch)
        asyncio.run(set_triggers(url, True))
    for batch in (1, 100):
        on = statistics.median(rates[(batch, True)])
        off = statistics.median(rates[(batch, False)])
        print(
            f"{batch} event(s) per request: {on:,.0f} events/s with the triggers,"
            f" {off:,.0f} without ({(on - off) / off:+.1%}); rounds with: "
            + ", ".join(f"{r:,.0f}" for r in rates[(batch, True)])
            + "; without: "
            + ", ".join(f"{r:,.0f}" for r in rates[(batch, False)])
        )


if __name__ == "__main__":
    main()
