"""``serve --workers 2`` is one service in its metrics: a scrape answered by either worker counts
every worker's requests (prometheus_client's multiprocess mode, set up by ``serve``), and says
which host, process group and process answered. Connections are new for each request, so the
kernel spreads them over both workers' sockets; which worker answered a scrape is read from
``campaign_service_info``."""

from __future__ import annotations

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


def _scrape(server: Served, key: str) -> tuple[dict[str, str], float]:
    """(the answering process's info labels, /healthz requests answered 200 by the service)."""
    response = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    info: dict[str, str] = {}
    healthz = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "campaign_service_info":
                info = sample.labels
            elif (
                sample.name == "campaign_http_requests_total"
                and sample.labels.get("route") == "/healthz"
            ):
                healthz += sample.value
    return info, healthz


def _scrape_each_worker(server: Served, key: str) -> dict[str, float]:
    """A scrape answered by each of the two workers: pid -> the /healthz count it reported."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + HANG_BOUND_S
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only these workers answered: {sorted(seen)}"
        info, healthz = _scrape(server, key)
        seen.setdefault(info["pid"], healthz)
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
    with serving(database_url, tmp_path, workers=2) as server:
        before = _scrape_each_worker(server, key)
        (base,) = set(before.values())  # both workers already report one figure
        _healthz_on_new_connections(server, REQUESTS)
        after = _scrape_each_worker(server, key)
        # Counted per process, the two figures would split REQUESTS between them.
        assert after == {pid: base + REQUESTS for pid in after}
        info, _ = _scrape(server, key)
        assert info["group"] == "multiprocess"
        assert info["host"]
        assert info["process_group"]
