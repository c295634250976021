"""The sender against a fake Postmark that answers in 20 ms, on a bench database.

    python -m bench.sender [--contacts 20000] [--rounds 2] [--database NAME] [--ratio-only]

Measures, in one run:
1. touches sent per second with 1 and with 2 ``campaign-api worker`` processes, and the bare
   SQL ceiling (4 below), in interleaved rounds, each round a fresh instance whose contacts
   are all due at once;
2. the due-to-sent lag (p50, p99) when touches become due steadily at 80% of the one-process
   rate, read from the dispatch rows (``sent_at - due_at``, both the database's clock): once
   with enrollments made beforehand and due one after another (only the sender works), once
   with this process enrolling the contacts as they become due (the enrollment service's
   work on the same cores);
3. the claim statement at 1,000,000 enrollments with 1% due: milliseconds per batch of 500,
   and whether ``EXPLAIN`` shows the partial due index;
4. the bare SQL ceiling for the same work (claim, dispatch insert, event insert, run directly
   in batches of 500), and the sender's rate as a fraction of it: each round's one-sender
   rate over the same round's ceiling, so that both sides see the same load on the machine.

``--ratio-only`` leaves out 2 and 3. Each round's line carries the machine's load average
(other work on the same cores moves every figure) and the CPU each touch cost: the database
sessions of this bench's database only (the senders', or the ceiling's one), the sender
processes and the fake provider. The senders log at WARNING (one INFO line per send is the
production default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.db import migrate
from app.db.driver import DriverConnection
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Provider
from app.services.enrollment import bulk_enroll
from app.services.lifecycle import transition
from app.services.sending.claims import DUE_CANDIDATES, Eligible, claim_due
from app.settings import Settings
from bench.common import bench_database_url
from bench.cpu import cpu_by_pid, tree_cpu_s
from testkit.campaigns import build_campaign, contact
from testkit.fake_providers import FakeProviders
from testkit.senders import start_worker, stop_worker, worker_environment

LATENCY_S = 0.020
CLAIM_ENROLLMENTS = 1_000_000
CLAIM_DUE_SHARE = 0.01
BATCH = 500
ONE_EMAIL_STEP = {
    "template_type": "email",
    "email_steps": [
        {
            "step_number": 1,
            "subject": "Hi {{first_name}}",
            "body": "Hello {{first_name}} at {{company}}.",
        }
    ],
}


@dataclass
class Bench:
    url: str
    fake: FakeProviders
    settings: Settings

    def env(self) -> dict[str, str]:
        return worker_environment(
            self.url,
            self.fake.base_url,
            CAMPAIGN_LOG_LEVEL="WARNING",
            CAMPAIGN_SEND_LEASE_S="60",
            CAMPAIGN_SEND_CONCURRENCY="32",
            CAMPAIGN_SEND_BATCH="500",
        )

    async def sql(self, statement: str, *args: object) -> list[asyncpg.Record]:
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetch(statement, *args)
        finally:
            await connection.close()


async def _campaign(bench: Bench, contacts: int, start: bool = True) -> str:
    engine = create_engine(bench.settings)
    try:
        campaign = await build_campaign(
            create_sessionmaker(engine),
            contacts,
            start=start,
            **ONE_EMAIL_STEP,  # type: ignore[arg-type]
        )
    finally:
        await engine.dispose()
    return campaign.instance_id


async def _sent(bench: Bench, instance_id: str) -> int:
    rows = await bench.sql(
        "SELECT count(*) AS n FROM dispatches WHERE instance_id = $1::uuid AND status = 'sent'",
        instance_id,
    )
    return int(rows[0]["n"])


SENT_SO_FAR = (
    "SELECT coalesce(sum(sent), 0) AS n FROM instance_counter_shards WHERE instance_id = $1::uuid"
)
"""The instance's sent counter (a handful of shard rows): what the wait polls, every 50 ms.
Counting the dispatch rows themselves on a new connection at each poll cost the database a
tenth of a core, taken from the senders being measured."""


async def _until_sent(bench: Bench, instance_id: str, count: int) -> None:
    dsn = make_url(bench.url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        while True:
            if await connection.fetchval(SENT_SO_FAR, instance_id) >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    sent = await _sent(bench, instance_id)
    assert sent >= count, f"the counter says {count} sent, the dispatches {sent}"


async def _backends(bench: Bench) -> dict[int, float]:
    """CPU seconds so far of each client session on the bench database but the asking one
    (the senders' pooled connections: other databases on the server are left out)."""
    rows = await bench.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    return cpu_by_pid(row["pid"] for row in rows)


@dataclass(frozen=True)
class Round:
    rate: float
    database_ms: float | None
    senders_ms: float
    provider_ms: float
    """CPU per touch: the senders' database sessions, the sender processes, the fake provider
    (this process)."""


async def throughput(bench: Bench, contacts: int, processes: int) -> Round:
    """Touches per second from the first claim to the last record, ``processes`` senders,
    and what each touch cost in CPU."""
    instance_id = await _campaign(bench, contacts, start=False)
    senders = [await start_worker(bench.env()) for _ in range(processes)]
    await asyncio.sleep(2)  # the senders connect, check the schema and go idle
    database_before = await _backends(bench)
    senders_before = sum(tree_cpu_s(s.pid) for s in senders)
    mine_before = sum(os.times()[:2])
    engine = create_engine(bench.settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            await transition(session, instance_id, "start", "bench")
    finally:
        await engine.dispose()
    await _until_sent(bench, instance_id, contacts)
    database_after = await _backends(bench)
    senders_cpu = sum(tree_cpu_s(s.pid) for s in senders) - senders_before
    mine_cpu = sum(os.times()[:2]) - mine_before
    span = await bench.sql(
        "SELECT extract(epoch FROM max(sent_at) - min(created_at)) AS s FROM dispatches"
        " WHERE instance_id = $1::uuid",
        instance_id,
    )
    for sender in senders:
        code, stderr = await stop_worker(sender)
        assert code == 0, stderr[-2000:]
    database_cpu = sum(database_after.values()) - sum(
        database_before.get(pid, 0.0) for pid in database_after
    )
    return Round(
        contacts / float(span[0]["s"]),
        database_cpu * 1000 / contacts if database_after else None,
        senders_cpu * 1000 / contacts,
        mine_cpu * 1000 / contacts,
    )


SCHEDULE = """
    UPDATE enrollments e
    SET next_action_at = n.base + make_interval(secs => $2 + (n.k - 1) / $3)
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS k, clock_timestamp() AS base
          FROM enrollments WHERE instance_id = $1::uuid) n
    WHERE e.id = n.id
"""
"""Each enrollment of the instance due ``1 / rate`` seconds after the one before, the first
``lead`` seconds from now."""
LEAD_S = 10.0


async def lag_scheduled(bench: Bench, rate: float, seconds: float) -> tuple[float, float, int]:
    """p50 and p99 of due-to-sent while ``rate`` touches a second fall due: the enrollments
    exist beforehand, each due a moment after the last (as a sequence's later steps fall due),
    so that only the sender works while it is measured."""
    count = int(rate * seconds)
    instance_id = await _campaign(bench, count, start=False)
    sender = await start_worker(bench.env())
    await asyncio.sleep(2)
    engine = create_engine(bench.settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            await transition(session, instance_id, "start", "bench")
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            await driver.execute(SCHEDULE, uuid.UUID(instance_id), LEAD_S, rate)
        await _until_sent(bench, instance_id, count)
    finally:
        await engine.dispose()
        code, stderr = await stop_worker(sender)
        assert code == 0, stderr[-2000:]
    return await _lags(bench, instance_id)


async def lag_enrolled(bench: Bench, rate: float, seconds: float) -> tuple[float, float, int]:
    """p50 and p99 of due-to-sent while ``rate`` touches per second become due by being
    enrolled, through the enrollment service, by this process on the same cores."""
    instance_id = await _campaign(bench, 0)
    sender = await start_worker(bench.env())
    await asyncio.sleep(2)
    engine = create_engine(bench.settings)
    sessionmaker = create_sessionmaker(engine)
    tick, number = 0.1, 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            due = int(rate * (time.monotonic() - started)) - number
            if due > 0:
                async with sessionmaker.begin() as session:
                    await bulk_enroll(
                        session, instance_id, [contact(number + i) for i in range(due)]
                    )
                number += due
            await asyncio.sleep(tick)
        await _until_sent(bench, instance_id, number)
    finally:
        await engine.dispose()
        code, stderr = await stop_worker(sender)
        assert code == 0, stderr[-2000:]
    return await _lags(bench, instance_id)


async def _lags(bench: Bench, instance_id: str) -> tuple[float, float, int]:
    lags = await bench.sql(
        "SELECT extract(epoch FROM sent_at - due_at) AS s FROM dispatches"
        " WHERE instance_id = $1::uuid ORDER BY 1",
        instance_id,
    )
    values = [float(r["s"]) for r in lags]
    return _quantile(values, 0.5), _quantile(values, 0.99), len(values)


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass(frozen=True)
class ClaimCost:
    query_ms: list[float]
    """The claim query: select and lock 500 due enrollments, timed at the client (the
    enrollments' metadata decoded from JSON included)."""
    server_ms: list[float]
    """The same query inside PostgreSQL: planning and execution, as EXPLAIN ANALYZE times it."""
    statement_ms: list[float]
    """The whole claim statement: that, plus steps, touches, quota and dispatch rows."""
    plan: str


async def claim_cost(bench: Bench) -> ClaimCost:
    """ms per claim of 500 at 1,000,000 enrollments with 1% due, and the query's plan."""
    instance_id = await _campaign(bench, 1)
    await bench.sql(
        """
        INSERT INTO enrollments (instance_id, contact_id, status, next_action_at, metadata)
        SELECT $1::uuid, 'bulk-' || g, 'active',
               CASE WHEN g % 100 = 0 THEN now() - interval '1 minute'
                    ELSE now() + interval '1 day' * (1 + g % 30) END,
               jsonb_build_object('email', 'bulk' || g || '@example.com', 'first_name', 'B',
                                  'company', 'C')
        FROM generate_series(1, $2::int) g
        """,
        instance_id,
        CLAIM_ENROLLMENTS,
    )
    await bench.sql("ANALYZE enrollments")
    engine = create_engine(bench.settings)
    eligible = [Eligible(uuid.UUID(instance_id), Provider.POSTMARK, None, frozenset())]
    query = DUE_CANDIDATES.format(instances="$1", batch=str(BATCH))
    cost = ClaimCost([], [], [], "")
    try:
        async with engine.connect() as connection:
            db = await DriverConnection.under(connection)
            for _ in range(20):
                for timings, claim in (
                    (cost.query_ms, lambda: _claim_query(db, query, eligible[0].instance_id)),
                    (cost.statement_ms, lambda: claim_due(db, eligible, BATCH, "bench", 60)),
                ):
                    transaction = db.driver.transaction()
                    await transaction.start()
                    begun = time.perf_counter()
                    claimed = await claim()
                    timings.append((time.perf_counter() - begun) * 1000)
                    assert len(claimed) == BATCH, len(claimed)
                    await transaction.rollback()
                transaction = db.driver.transaction()
                await transaction.start()
                await db.execute("SET LOCAL enable_bitmapscan = off")
                analyzed = await db.driver.fetchval(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + query, [eligible[0].instance_id]
                )
                await transaction.rollback()  # EXPLAIN ANALYZE ran it: the rows were locked
                timed = analyzed[0]  # the engine's connections decode json
                cost.server_ms.append(timed["Planning Time"] + timed["Execution Time"])
            async with db.driver.transaction():
                await db.execute("SET LOCAL enable_bitmapscan = off")
                plan = await db.driver.fetch("EXPLAIN " + query, [eligible[0].instance_id])
    finally:
        await engine.dispose()
    return ClaimCost(
        cost.query_ms, cost.server_ms, cost.statement_ms, "\n".join(r[0] for r in plan)
    )


async def _claim_query(db: DriverConnection, query: str, instance_id: uuid.UUID) -> list[Any]:
    """The claim query as ``claim_due`` runs it (the due index read in its order)."""
    await db.execute("SET LOCAL enable_bitmapscan = off")
    return await db.fetch(query, [instance_id])


CEILING = """
    WITH c AS (
        SELECT e.id, e.instance_id, e.next_action_at FROM enrollments e
        WHERE e.status = 'active' AND e.next_action_at IS NOT NULL AND e.next_action_at <= now()
          AND e.instance_id = $1::uuid
        ORDER BY e.next_action_at LIMIT 500
        FOR UPDATE OF e SKIP LOCKED
    ), d AS (
        INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number, provider,
                                status, attempts, due_at, provider_message_id, sent_at)
        SELECT id, instance_id, 'email', 1, 'postmark', 'sent', 1, next_action_at,
               gen_random_uuid()::text, now() FROM c
        RETURNING enrollment_id, instance_id, provider_message_id
    ), ev AS (
        INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel, provider,
                                     provider_event_id, step_number, occurred_at)
        SELECT enrollment_id, instance_id, 'sent', 'email', 'postmark', provider_message_id, 1,
               now() FROM d
    )
    UPDATE enrollments e SET next_action_at = NULL, current_step = 1 FROM c WHERE e.id = c.id
"""


@dataclass(frozen=True)
class Ceiling:
    rate: float
    database_ms: float | None
    """CPU of its database session per touch."""


async def ceiling(bench: Bench, contacts: int) -> Ceiling:
    """Touches per second of the bare SQL: claim, dispatch and event, 500 at a time."""
    instance_id = await _campaign(bench, contacts)
    dsn = make_url(bench.url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        cpu_before = cpu_by_pid([pid])
        begun = time.perf_counter()
        done = 0
        while done < contacts:
            async with connection.transaction():
                status = await connection.execute(CEILING, instance_id)
            moved = int(status.split()[-1])
            if moved == 0:
                break
            done += moved
        rate = done / (time.perf_counter() - begun)
        cpu_after = cpu_by_pid([pid])
        if pid not in cpu_before or pid not in cpu_after:
            return Ceiling(rate, None)
        return Ceiling(rate, (cpu_after[pid] - cpu_before[pid]) * 1000 / done)
    finally:
        await connection.close()


def _load() -> str:
    """The machine's load average (1, 5, 15 minutes), as the round saw it."""
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _spread(values: list[float], digits: int = 0) -> str:
    """The median and the range of ``values``."""
    figures = (statistics.median(values), min(values), max(values))
    median, low, high = (f"{v:,.{digits}f}" for v in figures)
    return f"median {median} ({low}-{high})"


async def main_async(url: str, contacts: int, rounds: int, ratio_only: bool) -> None:
    fake = FakeProviders(latency_s=LATENCY_S)
    await fake.start()
    bench = Bench(url, fake, Settings(database_url=url, pool_size=4))
    print(f"fake Postmark answering in {LATENCY_S * 1000:.0f} ms; {contacts} touches a round")
    rates: dict[int, list[float]] = {1: [], 2: []}
    bare: list[float] = []
    shares: list[float] = []
    for number in range(1, rounds + 1):
        print(f"round {number}:")
        for processes in (1, 2):
            result = await throughput(bench, contacts, processes)
            rates[processes].append(result.rate)
            database = "?" if result.database_ms is None else f"{result.database_ms:.3f}"
            print(
                f"  {processes} sender(s): {result.rate:,.0f} touches/s; CPU per touch:"
                f" database {database} ms, senders {result.senders_ms:.3f} ms,"
                f" fake provider {result.provider_ms:.3f} ms; {_load()}"
            )
        top = await ceiling(bench, contacts)
        bare.append(top.rate)
        shares.append(rates[1][-1] / top.rate)
        database = "?" if top.database_ms is None else f"{top.database_ms:.3f}"
        print(
            f"  bare SQL ceiling: {top.rate:,.0f} touches/s; CPU per touch: database {database}"
            f" ms; one sender is {shares[-1]:.2f} of it; {_load()}"
        )
    for processes, values in rates.items():
        print(f"{processes} sender(s): {_spread(values)}/s")
    print(f"bare SQL ceiling: {_spread(bare)}/s")
    print(f"one sender's share of the ceiling, round by round: {_spread(shares, 2)}")
    if ratio_only:
        await fake.close()
        return
    one = statistics.median(rates[1])
    for how, measure in (
        ("falling due as scheduled", lag_scheduled),
        ("enrolled meanwhile by this process", lag_enrolled),
    ):
        p50, p99, count = await measure(bench, 0.8 * one, 20)
        print(
            f"lag at 80% of one sender's rate ({0.8 * one:,.0f}/s, {count} touches {how}):"
            f" p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; {_load()}"
        )
    cost = await claim_cost(bench)
    for what, timings in (
        ("claim query (select and lock), at the client", cost.query_ms),
        ("claim query (select and lock), in PostgreSQL", cost.server_ms),
        ("claim statement (and create the dispatches)", cost.statement_ms),
    ):
        print(
            f"{what}, {BATCH} of {CLAIM_ENROLLMENTS:,} enrollments with 1% due:"
            f" median {statistics.median(timings):.1f} ms, worst {max(timings):.1f} ms"
        )
    print("plan of the claim query:\n" + cost.plan)
    await fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database",
        default="campaign_bench_sender",
        help="the bench database (dropped and created again), on DATABASE_URL's server",
    )
    parser.add_argument(
        "--ratio-only",
        action="store_true",
        help="only the rounds: rates and the ceiling, not the lag nor the claim at 1,000,000",
    )
    args = parser.parse_args()
    url = bench_database_url(args.database, fresh=True)
    migrate.upgrade(url)
    asyncio.run(main_async(url, args.contacts, args.rounds, args.ratio_only))


if __name__ == "__main__":
    main()
