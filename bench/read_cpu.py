"""CPU per answer of the two PostGraphile-comparison reads, in-process, A/B across checkouts.

    .venv/bin/python -m bench.read_cpu [--baseline DIR] [--rounds 6] [--requests 20]

Builds (once) the bench data set in ``--database`` (``campaign_bench_read_cpu``) on
DATABASE_URL's server, then starts one child process per checkout (this one, and
``--baseline``'s when given, e.g. a worktree of ``main``), each serving the app in-process (no
HTTP server, no client) the way a server worker does, and answering Q1 and Q2 of
bench/postgraphile. Rounds alternate the checkouts, so both see the same machine load; each
round prints the process CPU time per answer (``time.process_time``), the figure that a busy,
shared machine disturbs least. The children first show that their answers are the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ("q1_project.graphql", "q2_project.graphql")


async def _post(app: Any, body: bytes, key: str) -> bytes:
    """One request straight through the ASGI app: what a server worker does, minus sockets."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


async def _child(url: str, key: str, instance_id: str) -> None:
    """Serve commands from stdin: ``check`` (digests of the answers) or ``run N``."""
    # What a server worker runs (start-up objects frozen out of the collector's way).
    os.environ |= {
        "DATABASE_URL": url,
        "CAMPAIGN_ENVIRONMENT": "production",
        "CAMPAIGN_LOG_LEVEL": "WARNING",
        "CAMPAIGN_RATE_LIMIT_PER_MINUTE": "100000000",
    }
    from app.web.asgi import create_served_app

    app = create_served_app()
    bodies = []
    for name in QUERIES:
        query = (ROOT / "bench" / "postgraphile" / name).read_text()
        variables = {"id": instance_id} if "$id" in query else {}
        bodies.append(json.dumps({"query": query, "variables": variables}).encode())
    async with app.router.lifespan_context(app):
        for body in bodies:  # warm-up: plans, pools, caches
            for _ in range(3):
                await _post(app, body, key)
        for line in sys.stdin:
            command = line.split()
            if command[0] == "check":
                answers = [await _post(app, body, key) for body in bodies]
                assert all(b'"errors"' not in a for a in answers), answers[0][:300]
                reply: Any = [hashlib.sha256(a).hexdigest() for a in answers]
            else:
                count = int(command[1])
                reply = []
                for body in bodies:
                    started = time.process_time()
                    for _ in range(count):
                        await _post(app, body, key)
                    reply.append((time.process_time() - started) / count * 1000)
            print(json.dumps(reply), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=20, help="per query and round")
    parser.add_argument("--database", default="campaign_bench_read_cpu")
    parser.add_argument("--child", nargs=3, metavar=("URL", "KEY", "INSTANCE"))
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(*args.child))
        return

    from bench.common import bench_database_url
    from bench.read_graph import prepare

    url = bench_database_url(args.database)
    key, instance_id = asyncio.run(prepare(url, key_name="bench-read-cpu"))
    checkouts = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    children = []
    for checkout in checkouts:
        # This file, run by path: the checkout's packages come first on the path.
        command = [sys.executable, str(Path(__file__).resolve()), "--child", url]
        command += [key, instance_id]
        env = os.environ | {"PYTHONPATH": str(checkout)}
        children.append(
            subprocess.Popen(
                command,
                cwd=checkout,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )

    def ask(child: subprocess.Popen[str], command: str) -> Any:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    digests = [ask(child, "check") for child in children]
    print("answers identical:", all(d == digests[0] for d in digests))
    figures: list[list[list[float]]] = [[] for _ in children]
    for round_ in range(args.rounds):
        order = list(range(len(children)))
        if round_ % 2:
            order.reverse()
        for index in order:
            figures[index].append(ask(children[index], f"run {args.requests}"))
        print(
            f"round {round_}: "
            + "  ".join(
                f"{checkouts[i].name}: Q1 {figures[i][-1][0]:.1f} Q2 {figures[i][-1][1]:.2f} ms"
                for i in range(len(children))
            ),
            flush=True,
        )
    for index, checkout in enumerate(checkouts):
        q1 = statistics.median(f[0] for f in figures[index])
        q2 = statistics.median(f[1] for f in figures[index])
        print(f"{checkout}: median CPU per answer Q1 {q1:.1f} ms, Q2 {q2:.2f} ms")
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
