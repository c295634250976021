"""Senders killed with SIGKILL at random points, many times: nothing lost, nothing twice.

    python -m bench.sender_kill [--trials 10] [--contacts 1000]

Each trial: a fresh instance whose contacts are all due at once for one step, an e-mail
(Postmark) and a LinkedIn (PhantomBuster) touch each; a sender is killed at a random moment
while it works, a second one finishes; then every dispatch must be ``sent`` or (PhantomBuster
only) ``unknown``, no touch may have reached its fake provider twice, every sent touch must
be there, and the counters must match the events. The suite runs three such trials
(tests/sending/test_sigkill.py); this runs as many as asked and prints what each ended with.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter

import asyncpg
from sqlalchemy.engine import make_url

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.services.ingestion.counters import check_counters
from app.settings import Settings
from bench.common import bench_database_url
from testkit.campaigns import build_campaign
from testkit.fake_providers import FakeProviders
from testkit.senders import kill_worker, start_worker, stop_worker, worker_environment

ONE_STEP = {
    "email_steps": [
        {"step_number": 1, "subject": "Hi {{first_name}}", "body": "Hello {{first_name}}."}
    ],
    "linkedin_steps": [
        {"step_number": 1, "action": "connection_request", "message": "Hi {{first_name}}"}
    ],
}


async def _settled(dsn: str, instance_id: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        busy = await connection.fetchval(
            "SELECT (SELECT count(*) FROM dispatches WHERE instance_id = $1::uuid"
            "        AND status IN ('queued', 'sending'))"
            " + (SELECT count(*) FROM enrollments WHERE instance_id = $1::uuid"
            "        AND status = 'active' AND next_action_at IS NOT NULL)",
            instance_id,
        )
    finally:
        await connection.close()
    return bool(busy == 0)


async def _stuck(dsn: str, instance_id: str, sender: asyncio.subprocess.Process) -> str:
    """What was left open when the second sender did not finish, and what it said."""
    connection = await asyncpg.connect(dsn)
    try:
        open_rows = await connection.fetch(
            "SELECT channel::text, status::text, attempts, uncertain, last_error_code,"
            " claimed_until < now() AS lapsed, next_attempt_at - now() AS next_in, count(*)"
            " FROM dispatches WHERE instance_id = $1::uuid AND status IN ('queued', 'sending')"
            " GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 8 DESC LIMIT 8",
            instance_id,
        )
        due = await connection.fetch(
            "SELECT current_step, next_action_at - now() AS in, count(*) FROM enrollments"
            " WHERE instance_id = $1::uuid AND status = 'active' AND next_action_at IS NOT NULL"
            " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5",
            instance_id,
        )
    finally:
        await connection.close()
    if sender.returncode is None:
        sender.kill()
    _, stderr = await sender.communicate()
    return (
        f"the second sender did not finish (exit {sender.returncode}); open touches"
        f" {[dict(r) for r in open_rows]}; due enrollments {[dict(r) for r in due]};"
        f" its stderr: {stderr.decode(errors='replace')[-3000:]}"
    )


async def trial(url: str, fake: FakeProviders, contacts: int, seed: int) -> str:
    settings = Settings(database_url=url, pool_size=4)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        campaign = await build_campaign(sessionmaker, contacts, **ONE_STEP)  # type: ignore[arg-type]
        before = len(fake.taken())
        env = worker_environment(url, fake.base_url, CAMPAIGN_SEND_LEASE_S="2")
        first = await start_worker(env)
        while True:
            if len(fake.taken()) > before:
                break
            await asyncio.sleep(0.01)
        delay = random.Random(seed).uniform(0.0, 2.0)
        await asyncio.sleep(delay)
        await kill_worker(first)
        at_kill = len(fake.taken()) - before
        second = await start_worker(env)
        dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        deadline = time.monotonic() + 300
        while not await _settled(dsn, campaign.instance_id):
            if second.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(await _stuck(dsn, campaign.instance_id, second))
            await asyncio.sleep(0.1)
        code, stderr = await stop_worker(second)
        assert code == 0, stderr[-2000:]
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT id::text, channel::text, status::text, provider_message_id"
                " FROM dispatches WHERE instance_id = $1::uuid",
                campaign.instance_id,
            )
        finally:
            await connection.close()
        at_provider = Counter(m.dispatch_id for m in fake.taken())
        statuses = Counter((r["channel"], r["status"]) for r in rows)
        assert len(rows) == 2 * contacts, "a due touch has no dispatch"
        assert set(statuses) <= {("email", "sent"), ("linkedin", "sent"), ("linkedin", "unknown")}
        twice = {d for d, n in at_provider.items() if n > 1}
        assert not twice, "a touch reached its provider twice: " + ", ".join(
            sorted({m.provider for m in fake.taken() if m.dispatch_id in twice})
        )
        for row in rows:
            if row["status"] == "sent":
                assert at_provider[row["id"]] == 1, row
        async with sessionmaker() as session:
            assert await check_counters(session) == []
        reconciled = sum(1 for s in fake.searches if s in {r["id"] for r in rows})
        return (
            f"killed after {delay:.2f} s ({at_kill} touches taken by then): sent"
            f" {statuses[('email', 'sent')] + statuses[('linkedin', 'sent')]}, unknown"
            f" {statuses[('linkedin', 'unknown')]}, Postmark searches {reconciled};"
            f" none twice, none lost, counters match"
        )
    finally:
        await engine.dispose()


async def main_async(url: str, trials: int, contacts: int) -> None:
    fake = FakeProviders(latency_s=0.02)
    await fake.start()
    try:
        for n in range(trials):
            print(f"trial {n + 1}: {await trial(url, fake, contacts, n)}", flush=True)
    finally:
        await fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--contacts", type=int, default=1_000)
    args = parser.parse_args()
    url = bench_database_url("campaign_bench_sender_kill", fresh=True)
    migrate.upgrade(url)
    asyncio.run(main_async(url, args.trials, args.contacts))


if __name__ == "__main__":
    main()
