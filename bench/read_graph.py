"""Benchmark the nested read queries (dashboard, instance detail) against a running server.

    .venv/bin/python -m bench.read_graph [--workers 2] [--clients 10] [--seconds 20]
                                         [--fast both|on|off] [--query FILE ...]

Builds (once) a database `campaign_bench_read` with 50 templates, 250 instances, 50,000
enrollments and 500,000 events, starts `campaign-api serve` on it, and prints statements per
request, requests per second and p50/p99 latency for each query, by default once with the
standard executor and once with the fast path (CAMPAIGN_FAST_EXECUTION), in the same run.
``--query FILE`` (repeatable) times the queries in those files instead of the two examples; a
query that declares ``$id`` is given the busiest instance's id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.db import migrate
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.observability.sql_observer import recording
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from bench.common import (
    LoadResult,
    bench_database_url,
    build_dataset_once,
    closed_loop,
    running_server,
)
from testkit.examples import example
from testkit.factories import Shape

SHAPE = Shape(
    templates=50, instances_per_template=5, enrollments_per_instance=200, events_per_enrollment=10
)
INSTANCE_DETAIL = example("instance_detail.graphql")
DASHBOARD = example("dashboard.graphql")


async def prepare(url: str, key_name: str = "bench") -> tuple[str, str]:
    """Migrate, build the dataset when absent, and return (a read key named ``key_name``,
    made anew, and the busiest instance's id)."""
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, statement_timeout_ms=0)  # the build takes a while
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await build_dataset_once(connection, SHAPE)
            await connection.execute(
                text("DELETE FROM api_keys WHERE name = :name"), {"name": key_name}
            )
        async with create_sessionmaker(engine).begin() as session:
            key = await create_api_key(session, key_name, frozenset({Scope.READ}))
        async with engine.connect() as connection:
            instance_id = await connection.scalar(
                text("SELECT id::text FROM campaign_instances ORDER BY created_at DESC LIMIT 1")
            )
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return key, instance_id


async def statements_per_request(url: str, key: str, payloads: dict[str, Any]) -> dict[str, int]:
    """Run each query once in-process with a statement counter on the engine."""
    app = create_app(Settings(database_url=url))
    counts: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            with recording(app.state.engine) as seen:
                for name, payload in payloads.items():
                    seen.clear()
                    response = await client.post(
                        "/graphql", json=payload, headers={"authorization": f"Bearer {key}"}
                    )
                    assert "errors" not in response.json(), response.text[:500]
                    counts[name] = len(seen)
    return counts


async def one_response(url: str, key: str, payload: dict[str, Any]) -> Any:
    app = create_app(Settings(database_url=url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            response = await client.post(
                "/graphql", json=payload, headers={"authorization": f"Bearer {key}"}
            )
            return response.json()


def query_payload(query: str, instance_id: str) -> dict[str, Any]:
    """A query read from a file; ``$id`` is the instance the examples' detail query reads."""
    return {"query": query, "variables": {"id": instance_id} if "$id" in query else {}}


def measure(
    url: str, port: int, args: argparse.Namespace, key: str, payloads: dict[str, Any], fast: bool
) -> dict[str, LoadResult]:
    """Serve with the fast path on or off and load each query in turn."""
    headers = {"authorization": f"Bearer {key}"}
    results = {}
    setting = {"CAMPAIGN_FAST_EXECUTION": "true" if fast else "false"}
    with running_server(url, port, args.workers, setting) as base:
        for name, payload in payloads.items():

            async def one(client: httpx.AsyncClient, payload: dict[str, Any] = payload) -> bool:
                response = await client.post(f"{base}/graphql", json=payload, headers=headers)
                return response.status_code == 200 and b'"errors"' not in response.content

            asyncio.run(closed_loop(one, args.clients, 3, keepalive=False))  # warm-up
            results[name] = asyncio.run(
                closed_loop(one, args.clients, args.seconds, keepalive=False)
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--fast", choices=("both", "on", "off"), default="both", help="CAMPAIGN_FAST_EXECUTION"
    )
    parser.add_argument(
        "--query", type=Path, action="append", default=[], help="a .graphql file (repeatable)"
    )
    args = parser.parse_args()

    url = bench_database_url("campaign_bench_read")
    key, instance_id = asyncio.run(prepare(url))
    payloads = {path.stem: query_payload(path.read_text(), instance_id) for path in args.query} or {
        "dashboard": {"query": DASHBOARD},
        "instance detail": {"query": INSTANCE_DETAIL, "variables": {"id": instance_id}},
    }
    counts = asyncio.run(statements_per_request(url, key, payloads))
    first = next(iter(payloads))
    size = len(json.dumps(asyncio.run(one_response(url, key, payloads[first]))))
    print(
        f"workers={args.workers} clients={args.clients} seconds={args.seconds}"
        f" {first} response={size / 1024:.0f} KiB"
    )
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.fast]
    for fast in modes:
        for name, result in measure(url, args.port, args, key, payloads, fast).items():
            label = f"{name} ({'fast' if fast else 'standard'})"
            print(result.line(label) + f"  statements/request={counts[name]}")


if __name__ == "__main__":
    main()
