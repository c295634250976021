"""The hot-path cost of rate limits that every process shares: webhook ingestion (single
events, the per-request worst case) with each store, A/B in one run.

One server per configuration, all over one bench database, started once; then rounds in
which wrk loads each in turn (the order rotating), so the shared machine's noise falls on all
of them alike. Printed: requests per second per round, their median and spread, and each
configuration against the in-process buckets; then the limiter alone, in this process: its
microseconds per request for one busy bucket. The limits are set high enough never to
refuse (600,000 a minute: 10,000 a second, blocks of 6,000 tokens): what is measured is the
cost of asking, not of refusing. Far higher limits would make Redis's moving window (one entry
per token) push millions of entries per draw.

    .venv/bin/python -m bench.shared_limits [--workers 2] [--connections 32] [--seconds 10]
                                            [--rounds 4] [--warmup 3] [--pool-size 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from contextlib import ExitStack

from bench.common import bench_database_url, server_process
from bench.ingest import prepare, wrk_events

UNREFUSED = "600000"
CONFIGURATIONS = {
    "in-process (before)": {"CAMPAIGN_RATE_LIMIT_STORE": "memory"},
    "postgres, blocks of 1% (default)": {"CAMPAIGN_RATE_LIMIT_STORE": "postgres"},
    # A block of 1 token: one upsert per request, the design the blocks are measured against.
    # A limit of 100 a minute or less draws this way at any block size.
    "postgres, one draw per request": {
        "CAMPAIGN_RATE_LIMIT_STORE": "postgres",
        "CAMPAIGN_RATE_LIMIT_BLOCK_PERCENT": "0",
    },
    "redis, blocks of 1%": {
        "CAMPAIGN_RATE_LIMIT_STORE": "redis",
        "CAMPAIGN_REDIS_URL": "redis://127.0.0.1:6379/0",
    },
}


async def limiter_alone(url: str, rounds: int) -> dict[str, list[float]]:
    """Microseconds per ``take`` of one busy bucket, in this process, for each configuration:
    the limiter's own cost per request, free of the HTTP load's noise."""
    from app.security.rate_limit import RateLimiter
    from app.settings import Settings

    micro: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(rounds):
        for name, env in CONFIGURATIONS.items():
            settings = Settings(
                database_url=url,
                webhook_rate_limit_per_minute=int(UNREFUSED),
                rate_limit_store=env["CAMPAIGN_RATE_LIMIT_STORE"],
                rate_limit_block_percent=float(env.get("CAMPAIGN_RATE_LIMIT_BLOCK_PERCENT", 1)),
                redis_url=env.get("CAMPAIGN_REDIS_URL"),
            )
            limiter = RateLimiter(settings)
            identity = ("api-key", uuid.uuid4().hex)
            takes = 2_000 if name.endswith("per request") else 100_000
            try:
                await limiter.webhooks.take(identity)  # connected before timing
                started = time.perf_counter()
                for _ in range(takes):
                    await limiter.webhooks.take(identity)
                micro[name].append((time.perf_counter() - started) * 1e6 / takes)
            finally:
                await limiter.close()
    return micro


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--pool-size", type=int, default=4, help="per worker, every server")
    parser.add_argument("--micro-only", action="store_true", help="the limiter alone")
    args = parser.parse_args()

    url = bench_database_url("campaign_bench_limits", fresh=True)
    key, ids = asyncio.run(prepare(url))
    print(
        f"workers={args.workers} connections={args.connections} seconds={args.seconds}"
        f" rounds={args.rounds}, single events per request"
    )
    names = list(CONFIGURATIONS)
    figures: dict[str, list[float]] = {name: [] for name in names}
    with ExitStack() as stack:
        if args.micro_only:
            names = []
        bases = {}
        for n, name in enumerate(names):
            env = CONFIGURATIONS[name] | {
                "CAMPAIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE": UNREFUSED,
                # Four servers at once stay within a shared PostgreSQL's 100 connections.
                "CAMPAIGN_POOL_SIZE": str(args.pool_size),
                "CAMPAIGN_MAX_OVERFLOW": "0",
            }
            base, _ = stack.enter_context(server_process(url, args.port + n, args.workers, env))
            bases[name] = base
            if args.warmup:
                wrk_events(base, key, ids, 1, args.connections, args.warmup)
        for round_ in range(args.rounds if names else 0):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                result = wrk_events(bases[name], key, ids, 1, args.connections, args.seconds)
                if result is None:
                    print("skipped: wrk is not installed (apt-get install wrk)")
                    return
                if result.non_2xx:
                    print(f"  {name}: {result.non_2xx} non-2xx answers")
                figures[name].append(result.requests_per_s)
                print(f"round {round_ + 1} {name}: {result.requests_per_s:,.0f} req/s")
    micro = asyncio.run(limiter_alone(url, args.rounds))
    for name in CONFIGURATIONS:
        values = micro[name]
        print(
            f"limiter alone, {name}: median {statistics.median(values):.1f} us per take"
            f" (min {min(values):.1f}, max {max(values):.1f})"
        )
    if not names:
        return
    reference = statistics.median(figures[names[0]])
    for name in names:
        values = figures[name]
        median = statistics.median(values)
        print(
            f"{name}: median {median:,.0f} req/s (min {min(values):,.0f}, max {max(values):,.0f})"
            f", {median / reference - 1:+.1%} against in-process"
        )


if __name__ == "__main__":
    main()
