"""Benchmark bulk enrollment: bulkEnroll of 10,000 contacts (fresh, then all already enrolled)
against a running server; the same 10,000 with 5,000 of them open in 10 other instances, under
ALLOW, SKIP and MOVE in turn; and the CSV command on 100,000 rows.

    .venv/bin/python -m bench.bulk_enroll [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from bench.common import bench_database_url, running_server

BULK = """
mutation Bulk($id: ID!, $contacts: [EnrollContactInput!]!) {
  bulkEnroll(instanceId: $id, contacts: $contacts) { enrolledCount skippedCount errors { message } }
}
"""

POLICY_BULK = """
mutation PolicyBulk($id: ID!, $contacts: [EnrollContactInput!]!, $policy: CrossCampaignPolicy) {
  bulkEnroll(instanceId: $id, contacts: $contacts, policy: $policy) {
    enrolledCount skippedCount movedCount errors { message }
  }
}
"""
POLICIES = ("ALLOW", "SKIP", "MOVE")
OTHER_INSTANCES = 10
OPEN_ELSEWHERE = 5_000


async def prepare(url: str, instances: int) -> tuple[str, list[str]]:
    """An API key and ``instances`` fresh active instances of a one-step template."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(Settings(database_url=url))
    try:
        async with create_sessionmaker(engine).begin() as session:
            await session.execute(text("DELETE FROM api_keys WHERE name = 'bench-bulk'"))
            key = await create_api_key(session, "bench-bulk", frozenset({Scope.WRITE}))
            template = await session.scalar(
                text(
                    "INSERT INTO campaign_templates (name, type) VALUES ('bulk bench', 'email')"
                    " RETURNING id"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO email_steps (template_id, step_number, body, delay_hours)"
                    " VALUES (:t, 1, 'Hello {{first_name}}!', 2)"
                ),
                {"t": template},
            )
            ids = (
                await session.scalars(
                    text(
                        "INSERT INTO campaign_instances (template_id, name, status, started_at)"
                        " SELECT :t, 'bulk ' || g, 'active', now()"
                        " FROM generate_series(1, :n) g RETURNING id::text"
                    ),
                    {"t": template, "n": instances},
                )
            ).all()
    finally:
        await engine.dispose()
    return key, list(ids)


def contacts(n: int) -> list[dict[str, object]]:
    run = uuid.uuid4().hex[:8]
    return [
        {
            "contactId": f"{run}-{i}",
            "metadata": {
                "email": f"c{i}-{run}@example.com",
                "first_name": f"C{i}",
                "company": "Acme",
            },
        }
        for i in range(n)
    ]


def _post(client: httpx.Client, base: str, headers: dict[str, str], payload: object) -> dict:
    body: dict = client.post(f"{base}/graphql", json=payload, headers=headers).json()
    assert "errors" not in body, body
    assert body["data"]["bulkEnroll"]["errors"] == [], body
    result: dict = body["data"]["bulkEnroll"]
    return result


def policy_rounds(
    client: httpx.Client,
    base: str,
    headers: dict[str, str],
    others: list[str],
    targets: list[str],
    rounds: int,
) -> dict[str, list[float]]:
    """Per round, ALLOW, SKIP and MOVE in a rotating order, each on its own 10,000 contacts of
    which 5,000 were first enrolled (untimed) in ``others``, 500 per instance."""
    timings: dict[str, list[float]] = {p: [] for p in POLICIES}
    target = iter(targets)
    for round_number in range(rounds):
        order = POLICIES[round_number % 3 :] + POLICIES[: round_number % 3]
        for policy in order:
            batch = contacts(10_000)
            share = OPEN_ELSEWHERE // len(others)
            for n, other in enumerate(others):
                part = batch[n * share : (n + 1) * share]
                setup = {"query": BULK, "variables": {"id": other, "contacts": part}}
                assert _post(client, base, headers, setup)["enrolledCount"] == share
            payload = {
                "query": POLICY_BULK,
                "variables": {"id": next(target), "contacts": batch, "policy": policy},
            }
            started = time.perf_counter()
            result = _post(client, base, headers, payload)
            timings[policy].append(time.perf_counter() - started)
            expected = {
                "ALLOW": (10_000, 0, 0),
                "SKIP": (10_000 - OPEN_ELSEWHERE, OPEN_ELSEWHERE, 0),
                "MOVE": (10_000, 0, OPEN_ELSEWHERE),
            }[policy]
            got = (result["enrolledCount"], result["skippedCount"], result["movedCount"])
            assert got == expected, (policy, result)
    return timings


def _report(label: str, runs: list[float], reference: list[float] | None = None) -> None:
    median = statistics.median(runs)
    ratio = "" if reference is None else f"  {median / statistics.median(reference):.2f}x ALLOW"
    print(
        f"{label} median {median:.2f} s, spread {min(runs):.2f}-{max(runs):.2f} s"
        f"  (runs: {', '.join(f'{t:.2f}' for t in runs)}){ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--csv-rows", type=int, default=100_000)
    args = parser.parse_args()

    # Fresh each run: the figures do not depend on what earlier runs left in the tables.
    url = bench_database_url("campaign_bench_bulk", fresh=True)
    policy_instances = OTHER_INSTANCES + len(POLICIES) * args.rounds
    key, all_ids = asyncio.run(prepare(url, args.rounds + 1 + policy_instances))
    instance_ids, policy_ids = all_ids[: args.rounds + 1], all_ids[args.rounds + 1 :]
    headers = {"authorization": f"Bearer {key}"}
    fresh, repeat = [], []
    with running_server(url, args.port, 1) as base, httpx.Client(timeout=120) as client:
        for instance_id in instance_ids[: args.rounds]:
            batch = contacts(10_000)
            payload = {"query": BULK, "variables": {"id": instance_id, "contacts": batch}}
            for timings, expected in ((fresh, 10_000), (repeat, 0)):
                started = time.perf_counter()
                body = client.post(f"{base}/graphql", json=payload, headers=headers).json()
                timings.append(time.perf_counter() - started)
                assert body["data"]["bulkEnroll"]["enrolledCount"] == expected, body
        by_policy = policy_rounds(
            client,
            base,
            headers,
            policy_ids[:OTHER_INSTANCES],
            policy_ids[OTHER_INSTANCES:],
            args.rounds,
        )
    print(
        f"bulkEnroll 10,000 fresh:            median {statistics.median(fresh):.2f} s"
        f"  (runs: {', '.join(f'{t:.2f}' for t in fresh)})"
    )
    print(
        f"bulkEnroll 10,000 already enrolled: median {statistics.median(repeat):.2f} s"
        f"  (runs: {', '.join(f'{t:.2f}' for t in repeat)})"
    )
    print(f"bulkEnroll 10,000, {OPEN_ELSEWHERE:,} open in {OTHER_INSTANCES} other instances:")
    for policy in POLICIES:
        reference = None if policy == "ALLOW" else by_policy["ALLOW"]
        _report(f"  {policy:<5}", by_policy[policy], reference)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["contact_id", "email", "first_name", "company"])
            run = uuid.uuid4().hex[:8]
            writer.writerows(
                [f"{run}-{i}", f"n{i}-{run}@example.com", f"Name{i}", f"Co{i % 97}"]
                for i in range(args.csv_rows)
            )
        command = [
            str(Path(sys.executable).parent / "campaign-api"),
            "enroll",
            instance_ids[-1],
            str(path),
            "--quiet",
        ]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            env=os.environ | {"DATABASE_URL": url},
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
    print(
        f"CSV enroll {args.csv_rows:,} rows:             {elapsed:.2f} s"
        f"  ({done.stdout.splitlines()[0]})"
    )


if __name__ == "__main__":
    main()
