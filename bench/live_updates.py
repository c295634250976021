"""Benchmark live updates (issue 26): delivery latency from a webhook's 200 to the subscribers,
and webhook throughput with and without 1,000 subscribers connected.

Two `campaign-api serve` processes over one fresh bench database. Each of ``--instances``
campaign instances has ``--subscribers / --instances`` graphql-transport-ws subscribers of
``instanceActivity``, spread half/half over the two processes.

1. Latency: events arrive by webhook (``/webhooks/events``, ``--batch`` events per request,
   one by default) at ``--rate`` events/s, paced open-loop, to the two processes alternately,
   for ``--seconds``. For each (subscriber, event) delivery: the time the subscriber received
   it minus the time the webhook's 200 arrived, both read with ``time.perf_counter`` in this
   one process. Every subscriber of an event's instance must receive it exactly once.
2. Throughput: the highest ingestion rate wrk sustains (closed loop, ``--connections`` per
   process) in interleaved rounds without and with the subscribers connected (without, with,
   without, ... ending without), each round with subscribers compared with the mean of the
   rounds without around it.

The client (the sockets, the paced load and wrk) runs on the same machine as the servers and
PostgreSQL and shares their cores: it is kept cheap (one asyncio process, raw keep-alive HTTP
for the paced load, messages stored unparsed until the run ends), and its CPU time is printed.

    .venv/bin/python -m bench.live_updates [--subscribers 1000 --instances 100 --rate 500
                                            --seconds 30 --rounds 3 --round-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from bench.common import bench_database_url
from bench.cpu import postgres_cpu_s, tree_cpu_s
from bench.live_clients import HttpPool, Subscribers, event_body
from testkit.servers import Served, several

SERVER_ENV = {
    "CAMPAIGN_LOG_LEVEL": "warning",
    # One key and one address make the whole load: the per-key limits would cap the benchmark.
    "CAMPAIGN_RATE_LIMIT_PER_MINUTE": "100000000",
    "CAMPAIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE": "100000000",
    # The default (100 per key per process) is for one client; here one key holds them all.
    "CAMPAIGN_LIVE_SUBSCRIPTIONS_PER_KEY": "100000",
    # PostgreSQL's 100 connections are shared with whatever else runs here: 10 per process
    # at most (2 cores keep no more than that busy).
    "CAMPAIGN_POOL_SIZE": "5",
    "CAMPAIGN_MAX_OVERFLOW": "5",
}
DRAIN_QUIET_S = 5.0
DRAIN_MAX_S = 60.0


async def prepare(url: str, instances: int, per_instance: int) -> tuple[str, dict[str, list[str]]]:
    """A fresh campaign: ``instances`` active instances of ``per_instance`` active enrollments;
    an API key with the read and webhooks scopes; the enrollment ids per instance."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with create_sessionmaker(engine).begin() as session:
            key = await create_api_key(
                session, "bench-live", frozenset({Scope.READ, Scope.WEBHOOKS})
            )
            template = await session.scalar(
                text(
                    "INSERT INTO campaign_templates (name, type)"
                    " VALUES ('live bench', 'multi_channel') RETURNING id"
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
                    "INSERT INTO campaign_instances"
                    " (template_id, name, status, started_at, total_enrolled)"
                    " SELECT :t, 'live ' || g, 'active', now(), :n FROM generate_series(1, :i) g"
                ),
                {"t": template, "i": instances, "n": per_instance},
            )
            await session.execute(
                text(
                    "INSERT INTO enrollments (instance_id, contact_id, status)"
                    " SELECT i.id, i.id::text || '-' || g, 'active'"
                    " FROM campaign_instances i CROSS JOIN generate_series(1, :n) g"
                ),
                {"n": per_instance},
            )
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT instance_id::text, id::text FROM enrollments ORDER BY 1, 2")
            )
            enrollments: dict[str, list[str]] = defaultdict(list)
            for instance, enrollment in rows:
                enrollments[instance].append(enrollment)
    finally:
        await engine.dispose()
    return key, dict(enrollments)


async def event_ids(url: str, run: str) -> dict[str, str]:
    """Stored event id → the provider_event_id this run gave it."""
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT id::text, provider_event_id FROM campaign_events"
                    " WHERE provider_event_id LIKE :run"
                ),
                {"run": f"{run}-%"},
            )
            return {event: provider_event for event, provider_event in rows}
    finally:
        await engine.dispose()


@dataclass
class Posted:
    instance: str
    server: int
    answered: float  # perf_counter when the 200 arrived


async def paced_load(
    pools: Sequence[HttpPool],
    enrollments: dict[str, list[str]],
    rate: float,
    seconds: float,
    batch: int,
    run: str,
) -> tuple[dict[str, Posted], list[str], float, float]:
    """``rate`` events/s for ``seconds``, open loop: request ``n`` leaves at ``start + n *
    batch / rate`` whether or not earlier ones were answered, to server ``n % 2``; instance
    ``n // 2 % instances`` (every instance's events go to both servers). Returns what each
    provider_event_id's 200 said, the failures, the worst lateness of a send, and how long
    it took until the last answer."""
    instances = sorted(enrollments)
    requests = int(rate * seconds / batch)
    posted: dict[str, Posted] = {}
    failures: list[str] = []
    late = 0.0
    tasks = []

    async def send(n: int, scheduled: float) -> None:
        nonlocal late
        server = n % len(pools)
        instance = instances[n // len(pools) % len(instances)]
        bodies = [
            event_body(random.choice(enrollments[instance]), f"{run}-{n}-{b}") for b in range(batch)
        ]
        payload = bodies[0] if batch == 1 else {"events": bodies}
        try:
            async with pools[server].slots:
                late = max(late, time.perf_counter() - scheduled)
                status, answer = await pools[server].post_holding_slot(json.dumps(payload).encode())
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            failures.append(f"request {n}: {error!r}")
            return
        answered = time.perf_counter()
        if status != 200 or json.loads(answer).get("accepted") != batch:
            failures.append(f"request {n}: {status} {answer[:200]!r}")
            return
        for body in bodies:
            posted[str(body["provider_event_id"])] = Posted(instance, server, answered)

    start = time.perf_counter() + 0.1
    for n in range(requests):
        scheduled = start + n * batch / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(n, scheduled)))
    await asyncio.gather(*tasks)
    return posted, failures, late, time.perf_counter() - start


async def drain(subscribers: Subscribers, expected: int) -> None:
    """Wait until every expected delivery arrived, or nothing arrived for DRAIN_QUIET_S."""
    deadline = time.monotonic() + DRAIN_MAX_S
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        received = subscribers.received
        if received >= expected:
            return
        if received != last:
            last, quiet_since = received, time.monotonic()
        elif time.monotonic() - quiet_since > DRAIN_QUIET_S:
            return
        await asyncio.sleep(0.2)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no deliveries"
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return (
        f"p50 {at(50):7.1f} ms  p99 {at(99):7.1f} ms  max {ordered[-1]:7.1f} ms"
        f"  (n={len(ordered):,})"
    )


@dataclass
class Deliveries:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    delivered: int = 0
    duplicates: int = 0
    foreign: int = 0
    errors: list[str] = field(default_factory=list)
    other_kinds: Counter[str] = field(default_factory=Counter)


def account(
    subscribers: Subscribers, posted: dict[str, Posted], stored: dict[str, str]
) -> Deliveries:
    """Every kept message of every subscriber, matched to the webhook that caused it."""
    result = Deliveries()
    for subscriber in subscribers.all:
        seen: set[str] = set()
        for received_at, raw in subscriber.messages:
            message = json.loads(raw)
            if message.get("type") != "next":
                continue
            payload = message["payload"]
            if payload.get("errors"):
                result.errors.append(json.dumps(payload["errors"])[:300])
                continue
            item = payload["data"]["instanceActivity"]
            if item["kind"] != "EVENT" or item.get("event") is None:
                result.other_kinds[item["kind"]] += 1
                continue
            source = posted.get(stored.get(item["event"]["id"], ""))
            if source is None or source.instance != subscriber.instance:
                result.foreign += 1  # a warm-up event, or another instance's
                continue
            if item["event"]["id"] in seen:
                result.duplicates += 1
                continue
            seen.add(item["event"]["id"])
            result.delivered += 1
            latency = (received_at - source.answered) * 1000
            result.latencies["all"].append(latency)
            result.latencies[f"subscriber on server {subscriber.server}"].append(latency)
            same = "same" if source.server == subscriber.server else "other"
            result.latencies[f"webhook to the {same} server"].append(latency)
    return result


async def latency_phase(
    servers: Sequence[Served],
    url: str,
    key: str,
    enrollments: dict[str, list[str]],
    args: argparse.Namespace,
) -> None:
    pools = [HttpPool(s.port, key) for s in servers]
    subscribers = Subscribers(servers, sorted(enrollments), args.subscribers)
    opened = time.perf_counter()
    await subscribers.open(key, pools, enrollments)
    print(
        f"{len(subscribers.all)} subscribers connected and receiving in"
        f" {time.perf_counter() - opened:.1f} s"
    )
    subscribers.keep()
    for pool in pools:  # the warm-up's connections may have passed the keep-alive timeout
        await pool.close()
    run = f"live-{uuid.uuid4().hex[:12]}"
    cpu_before = Cpu.now(servers)
    posted, failures, late, took = await paced_load(
        pools, enrollments, args.rate, args.seconds, args.batch, run
    )
    cpu_after = Cpu.now(servers)
    per_event = cpu_after.servers_since(cpu_before) * 1000 / max(len(posted), 1)
    cpu = f"{cpu_after.since(cpu_before)}; servers' CPU per event {per_event:.2f} ms"
    per_instance = Counter(p.instance for p in posted.values())
    by_instance = Counter(s.instance for s in subscribers.all)
    expected = sum(by_instance[i] * n for i, n in per_instance.items())
    already = subscribers.received - sum(len(s.messages) for s in subscribers.all)
    await drain(subscribers, already + expected)
    closed = subscribers.closed_by_server()
    await subscribers.close()
    for pool in pools:
        await pool.close()

    found = account(subscribers, posted, await event_ids(url, run))
    print(
        f"paced load: {len(posted):,} events accepted, {args.rate:g}/s for {args.seconds:g} s"
        f" ({args.batch} per request, alternately to the 2 servers), {len(failures)} failed"
        f" requests; latest send {late * 1000:.1f} ms behind schedule, last answer"
        f" {took:.1f} s after the start"
    )
    if took > args.seconds + 1:
        print(
            f"  the servers did not keep up: {len(posted) / took:,.1f} events/s accepted"
            " (sends wait once 128 requests per server are unanswered)"
        )
    for failure in failures[:5]:
        print(f"  failed: {failure}")
    print(
        f"deliveries: {found.delivered:,} of {expected:,} expected"
        f" ({args.subscribers // args.instances} subscribers x each event);"
        f" missing {expected - found.delivered:,}, duplicates {found.duplicates},"
        f" other instances' or warm-up {found.foreign}, errors {len(found.errors)},"
        f" other kinds {dict(found.other_kinds)}"
    )
    for error in found.errors[:3]:
        print(f"  error: {error}")
    if closed:
        print(f"  subscribers closed by the servers (code: count): {dict(closed)}")
    print("latency from the webhook's 200 to the subscriber:")
    for label in sorted(found.latencies, key=lambda label: (label != "all", label)):
        print(f"  {label:<30} {percentiles(found.latencies[label])}")
    print(f"  CPU during the load: {cpu}")


def _machine_busy_s() -> float:
    """CPU seconds every core of this machine spent busy so far, whoever spent them."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds so far: this client (and the wrk runs it reaped), each server process
    tree, PostgreSQL (every database's, when it runs here), the whole machine."""

    wall: float
    client: float
    servers: tuple[float, ...]
    database: float | None
    machine: float

    @classmethod
    def now(cls, servers: Sequence[Served]) -> Cpu:
        times = os.times()
        return cls(
            wall=time.perf_counter(),
            client=times.user + times.system + times.children_user + times.children_system,
            servers=tuple(tree_cpu_s(s.process.pid) for s in servers),
            database=postgres_cpu_s(),
            machine=_machine_busy_s(),
        )

    def servers_since(self, earlier: Cpu) -> float:
        return sum(self.servers) - sum(earlier.servers)

    def since(self, earlier: Cpu) -> str:
        """Cores used on average in between, by each."""
        wall = self.wall - earlier.wall
        servers = " + ".join(
            f"{(now - then) / wall:.2f}"
            for now, then in zip(self.servers, earlier.servers, strict=True)
        )
        line = f"client {(self.client - earlier.client) / wall:.2f}, servers {servers}"
        if self.database is not None and earlier.database is not None:
            database = (self.database - earlier.database) / wall
            # Backends of other databases that ended take their CPU seconds out of the sum.
            shown = f"{database:.2f}" if database >= 0 else "n/a (other backends ended)"
            line += f", PostgreSQL (all databases) {shown}"
        busy = (self.machine - earlier.machine) / wall
        return line + f" cores; machine busy {busy:.2f} of {os.cpu_count()}"


WRK_SCRIPT = """
ids = {%(ids)s}
types = {"delivered", "opened", "clicked"}
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
      '{"enrollment_id":"%%s","event_type":"%%s","provider":"api",'
      .. '"provider_event_id":"%(run)s-%%d","step_number":1,"occurred_at":"%%s",'
      .. '"metadata":{"source":"bench.live_updates"}}',
      ids[math.random(#ids)], types[math.random(#types)], counter,
      os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ"))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


async def stored_events(url: str) -> int:
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM campaign_events")))
    finally:
        await engine.dispose()


async def round_events(url: str, runs: list[str]) -> tuple[dict[str, Posted], dict[str, str]]:
    """The events wrk stored under ``runs``: by provider_event_id (with their instance), and
    provider_event_id by event id, for ``account``."""
    engine = create_engine(Settings(database_url=url, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT e.id::text, e.provider_event_id, n.instance_id::text"
                    " FROM campaign_events e JOIN enrollments n ON n.id = e.enrollment_id"
                    " WHERE split_part(e.provider_event_id, '-', 1) = ANY(:runs)"
                ),
                {"runs": runs},
            )
            posted, stored = {}, {}
            for event, provider_event, instance in rows:
                posted[provider_event] = Posted(instance, server=-1, answered=0.0)
                stored[event] = provider_event
            return posted, stored
    finally:
        await engine.dispose()


async def wrk_round(
    wrk: str, servers: Sequence[Served], key: str, ids: list[str], connections: int, seconds: int
) -> tuple[float, int, list[str]]:
    """One wrk per server at once (a keep-alive connection stays on its server): the sum of
    their requests/s, of their non-2xx answers, and their run ids."""
    with tempfile.TemporaryDirectory() as folder:
        runs, run_ids = [], []
        for n, server in enumerate(servers):
            run_ids.append(uuid.uuid4().hex)
            script = Path(folder) / f"live{n}.lua"
            # wrk's counter and random numbers start over every run: the run id keeps the
            # provider_event_ids new (a repeat would be a cheap duplicate, not an event).
            script.write_text(
                WRK_SCRIPT
                % {"ids": ", ".join(f'"{i}"' for i in ids), "key": key, "run": run_ids[-1]}
            )
            runs.append(
                await asyncio.create_subprocess_exec(
                    wrk,
                    "-t1",
                    f"-c{connections}",
                    f"-d{seconds}s",
                    "-s",
                    str(script),
                    f"{server.base}/webhooks/events",
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        rate, non_2xx = 0.0, 0
        for run in runs:
            output, _ = await run.communicate()
            if run.returncode:
                raise RuntimeError(f"wrk failed: {output.decode()}")
            for line in output.decode().splitlines():
                words = line.split()
                if words[:1] == ["Requests/sec:"]:
                    rate += float(words[1])
                if words[:1] == ["Non-2xx"]:
                    non_2xx += int(words[-1])
    return rate, non_2xx, run_ids


async def throughput_phase(
    servers: Sequence[Served],
    url: str,
    key: str,
    enrollments: dict[str, list[str]],
    args: argparse.Namespace,
) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("throughput skipped: wrk is not installed (apt-get install -y wrk)")
        return
    ids = [e for es in enrollments.values() for e in es]
    pools = [HttpPool(s.port, key) for s in servers]
    per_instance = args.subscribers // args.instances
    rounds = 2 * args.rounds + 1
    rates: list[float] = []
    print(
        f"throughput: wrk, {args.connections} connections to each server, {args.round_seconds} s"
        f" per round, {rounds} rounds alternating without and with the subscribers"
    )
    await wrk_round(wrk, servers, key, ids, args.connections, 5)  # warm-up, not counted
    for n in range(rounds):
        subscribers = None
        if n % 2:
            subscribers = Subscribers(servers, sorted(enrollments), args.subscribers)
            await subscribers.open(key, pools, enrollments)
            subscribers.keep()
            before = subscribers.received
        stored_before = await stored_events(url)
        cpu_before = Cpu.now(servers)
        rate, non_2xx, run_ids = await wrk_round(
            wrk, servers, key, ids, args.connections, args.round_seconds
        )
        cpu_after = Cpu.now(servers)
        stored = await stored_events(url) - stored_before
        rates.append(rate)
        label = "with   " if subscribers else "without"
        per_event = cpu_after.servers_since(cpu_before) * 1000 / max(stored, 1)
        print(
            f"  round {n + 1} {label} {rate:9,.1f} req/s  events stored {stored:,}"
            f"  non-2xx={non_2xx}  servers' CPU per stored event {per_event:.2f} ms\n"
            f"    CPU: {cpu_after.since(cpu_before)}",
            flush=True,
        )
        if subscribers is not None:
            during = subscribers.received - before
            ended = time.perf_counter()
            await asyncio.sleep(1)  # the requests wrk left in flight commit too
            posted, stored_ids = await round_events(url, run_ids)
            expected = len(posted) * per_instance
            await drain(subscribers, before + expected)
            waited = time.perf_counter() - ended
            closed = subscribers.closed_by_server()
            found = account(subscribers, posted, stored_ids)
            print(
                f"    messages received: {during:,} during the round; {waited:.1f} s after it"
                f" deliveries {found.delivered:,} of {expected:,} expected, missing"
                f" {expected - found.delivered:,}, duplicates {found.duplicates},"
                f" errors {len(found.errors)}"
                + (f"; closed by the servers (code: count): {dict(closed)}" if closed else ""),
                flush=True,
            )
            await subscribers.close()
    for pool in pools:
        await pool.close()
    ratios = [rates[n] / statistics.mean(rates[n - 1 : n + 2 : 2]) for n in range(1, rounds, 2)]
    print(
        f"with / without subscribers: mean {statistics.mean(ratios):.3f}"
        f"  min {min(ratios):.3f}  max {max(ratios):.3f}"
        f"  (each round with, against the mean of the rounds without around it:"
        f" {', '.join(f'{r:.3f}' for r in ratios)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--enrollments", type=int, default=50, help="per instance")
    parser.add_argument("--rate", type=float, default=500, help="events/s, paced")
    parser.add_argument("--seconds", type=float, default=30, help="of paced load")
    parser.add_argument("--batch", type=int, default=1, help="events per paced request")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds with subscribers (0: none)"
    )
    parser.add_argument("--round-seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16, help="wrk's, per server")
    args = parser.parse_args()
    if args.subscribers % (2 * args.instances):
        parser.error("--subscribers must be a multiple of twice --instances (half per server)")

    url = bench_database_url("campaign_bench_live", fresh=True)
    key, enrollments = asyncio.run(prepare(url, args.instances, args.enrollments))
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc={os.cpu_count()},"
        f" load average {' '.join(f'{v:.2f}' for v in os.getloadavg())};"
        f" {args.instances} instances x {args.enrollments} enrollments,"
        f" {args.subscribers} subscribers ({args.subscribers // args.instances} per instance,"
        " half on each of 2 server processes)"
    )
    print(
        "the client (sockets, paced load, wrk) shares the machine's cores with the 2 servers"
        " and PostgreSQL"
    )
    with (
        tempfile.TemporaryDirectory() as directory,
        several(url, Path(directory), 2, **SERVER_ENV) as servers,
    ):

        async def phases() -> None:
            await latency_phase(servers, url, key, enrollments, args)
            if args.rounds:
                await throughput_phase(servers, url, key, enrollments, args)

        try:
            asyncio.run(phases())
        except BaseException:
            for served in servers:  # what the servers said, before their logs go
                exited = served.process.poll()
                print(f"--- {served.log.name} (exit code {exited}), last lines:")
                print("\n".join(served.log.read_text().splitlines()[-15:]))
            raise
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
