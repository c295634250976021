"""What prometheus_client's multiprocess mode (``serve --workers N``) adds to a request's metric
work, against a process on its own: the counter and histograms one request records.

    .venv/bin/python -m bench.metrics_overhead [--requests 200000]

Runs the same loop in two fresh interpreters, one with PROMETHEUS_MULTIPROC_DIR set (values in
memory-mapped files) and one without (values in memory), and prints microseconds per request.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

LOOP = """
import time
from app.observability import metrics
requests = {requests}
counter = metrics.labelled(metrics.http_requests_total, "/webhooks/api", "POST", "200")
statements = metrics.labelled(metrics.sql_statements_per_request, "/webhooks/api")
events = metrics.labelled(metrics.webhook_events_total, "api", "accepted")
operation = metrics.graphql_operation_seconds.labels("Dashboard", "query")
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    for _ in range(requests):
        counter.inc()
        statements.observe(3)
        events.inc()
        operation.observe(0.012)
    best = min(best, time.perf_counter() - started)
print(f"{{best / requests * 1e6:.2f}}")
"""


def _per_request_us(requests: int, multiprocess_dir: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiprocess_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    done = subprocess.run(
        [sys.executable, "-c", LOOP.format(requests=requests)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    alone = _per_request_us(args.requests, None)
    with tempfile.TemporaryDirectory() as directory:
        shared = _per_request_us(args.requests, directory)
    print(
        "metric work per request (2 counters, 2 histograms), best of 5:"
        f" one process {alone:.2f} us, multiprocess mode {shared:.2f} us"
    )


if __name__ == "__main__":
    main()
