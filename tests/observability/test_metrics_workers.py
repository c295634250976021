"""``serve --workers 2`` is one service in its metrics: a scrape answered by either worker counts
every worker's requests (prometheus_client's multiprocess mode, set up by ``serve``), and says
which host, process group and process answered. Connections are new for each request, so the
kernel spreads them over both workers' sockets; which worker answered a scrape is read from
``campaign_service_info``. A worker killed outright leaves its counts in the sum and its pool
out of it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from testkit.servers import Served, serving

HANG_BOUND_S = 20.0
REQUESTS = 40
POOL_CAPACITY = 3  # CAMPAIGN_POOL_SIZE + CAMPAIGN_MAX_OVERFLOW of each worker


def _scrape(server: Served, key: str) -> tuple[dict[str, str], dict[str, float]]:
    """(the answering process's info labels, figures: /healthz requests answered and the pool's
    capacity, as the service reports them)."""
    response = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    info: dict[str, str] = {}
    figures = {"healthz": 0.0, "capacity": 0.0}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "campaign_service_info":
                info = sample.labels
            elif (
                sample.name == "campaign_http_requests_total"
                and sample.labels.get("route") == "/healthz"
            ):
                figures["healthz"] += sample.value
            elif (
                sample.name == "campaign_db_pool_connections"
                and sample.labels["state"] == "capacity"
            ):
                figures["capacity"] += sample.value
    return info, figures


def _scrape_each_worker(
    server: Served, key: str, bound_s: float = HANG_BOUND_S
) -> dict[str, dict[str, float]]:
    """A scrape answered by each of the two workers: pid -> the figures it reported."""
    seen: dict[str, dict[str, float]] = {}
    deadline = time.monotonic() + bound_s
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only these workers answered: {sorted(seen)}"
        info, figures = _scrape(server, key)
        seen.setdefault(info["pid"], figures)
    return seen


def _healthz_on_new_connections(server: Served, count: int) -> None:
    for _ in range(count):
        assert httpx.get(f"{server.base}/healthz").status_code == 200


async def test_either_worker_reports_every_workers_requests(
    database_url: str,
    tmp_path: Path,
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        key = await create_api_key(session, "prometheus", frozenset({Scope.ADMIN}))
    with serving(
        database_url, tmp_path, workers=2, CAMPAIGN_POOL_SIZE="2", CAMPAIGN_MAX_OVERFLOW="1"
    ) as server:
        before = _scrape_each_worker(server, key)
        (base,) = {figures["healthz"] for figures in before.values()}  # both report one figure
        _healthz_on_new_connections(server, REQUESTS)
        after = _scrape_each_worker(server, key)
        # Counted per process, the two figures would split REQUESTS between them.
        assert {pid: f["healthz"] for pid, f in after.items()} == dict.fromkeys(
            after, base + REQUESTS
        )
        assert {f["capacity"] for f in after.values()} == {2 * POOL_CAPACITY}
        info, _ = _scrape(server, key)
        assert info["group"] == "multiprocess"
        assert info["host"]
        assert info["process_group"]

        # A worker killed outright is replaced: its requests still count, its pool does not.
        killed = next(iter(after))
        os.kill(int(killed), signal.SIGKILL)
        replaced = _wait_for_workers_other_than(server, key, set(after))
        assert killed not in replaced
        assert {pid: f["healthz"] for pid, f in replaced.items()} == dict.fromkeys(
            replaced, base + REQUESTS
        )
        assert {f["capacity"] for f in replaced.values()} == {2 * POOL_CAPACITY}


def _wait_for_workers_other_than(
    server: Served, key: str, before: set[str]
) -> dict[str, dict[str, float]]:
    """Once a replacement (a pid not in ``before``) answers, a scrape from each live worker."""
    deadline = time.monotonic() + 3 * HANG_BOUND_S
    while time.monotonic() < deadline:
        try:
            info, _ = _scrape(server, key)
        except httpx.TransportError:
            continue  # a connection the killed worker had accepted
        if info["pid"] not in before:
            return _scrape_each_worker(server, key)
    raise AssertionError("the killed worker was not replaced")
