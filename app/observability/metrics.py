"""Every Prometheus metric of the service, in one place, so that a new one is one line here.

Edges (middleware, webhook routes, resolvers, the CSV command) record; app/services stays
unaware of them.

Under ``serve --workers N`` the workers are one service: ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own before they start (prometheus_client's
multiprocess mode: each process writes its values to memory-mapped files there), and a scrape
answered by any worker merges every worker's files (``render``, ``scrape_registry``). Alone, a
process serves its own registry. Either way ``campaign_service_info`` says which host and process
group answered, so that several machines are told apart.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Iterator
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
"""Set by ``serve`` for its workers; prometheus_client reads it when it is first imported."""
POOL_PUBLISH_EVERY_S = 1.0
"""How often each worker writes its pool's counts for the others' scrapes (multiprocess mode)."""
# GraphQL operation names come from clients: past this many distinct names, new ones are
# counted as "other", so a client cannot grow the registry without bound.
MAX_OPERATION_NAMES = 200

http_requests_total = Counter(
    "campaign_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
graphql_operation_seconds = Histogram(
    "campaign_graphql_operation_duration_seconds",
    "Time to answer a GraphQL request, by operation name and type (query or mutation).",
    ["operation", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
sql_statements_per_request = Histogram(
    "campaign_sql_statements_per_request",
    "SQL statements one HTTP request ran on its own connections, by route template.",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 12, 20, 50, 100),
)
webhook_events_total = Counter(
    "campaign_webhook_events",
    "Webhook events by provider and outcome: accepted (stored and linked), orphaned (stored,"
    " enrollment unknown), duplicate, ignored (untracked type); refused counts requests.",
    ["provider", "outcome"],
)
enrollments_created_total = Counter(
    "campaign_enrollments_created",
    "Enrollments created, by source (enrollContact, bulkEnroll, csv).",
    ["source"],
)
instance_transitions_total = Counter(
    "campaign_instance_transitions",
    "Instance status changes committed, by target status (draft for a created instance).",
    ["to_status"],
)
live_subscriptions = Gauge(
    "campaign_live_subscriptions",
    "GraphQL subscriptions open (on every live worker, under serve --workers N).",
    multiprocess_mode="livesum",
)
live_closed = Counter(
    "campaign_live_subscribers_closed",
    "Subscribers the server closed: slow (fell a whole queue behind, close code 4499) or"
    " revoked (their API key was revoked, close code 4403).",
    ["reason"],
)
live_loads = Counter(
    "campaign_live_loads",
    "Loads of announced activity: one per batch of notified instances, whatever the number"
    " of their subscribers.",
)
live_load_statements = Counter(
    "campaign_live_load_statements",
    "SQL statements the live-updates loads ran.",
)
live_event_results = Counter(
    "campaign_live_event_results",
    "Subscription messages by how their result was made: executed for this subscriber, or"
    " shared (another subscriber of the same event with the same document executed it).",
    ["result"],
)
graphql_fastpath_fallbacks_total = Counter(
    "campaign_graphql_fastpath_fallbacks",
    "GraphQL requests the fast execution path handed back to the regular executor, by reason.",
    ["reason"],
)
rate_limit_store_errors_total = Counter(
    "campaign_rate_limit_store_errors",
    "Rate-limit draws the shared store (postgres or redis) failed; each process's own buckets"
    " decided those requests, and the next second's.",
    ["store"],
)

sends_total = Counter(
    "campaign_sends",
    "Touches the sender finished an attempt for, by provider and outcome: sent, retry,"
    " failed, unknown (interrupted where the provider cannot be asked), reconciled (found"
    " at the provider after a lost answer), cancelled.",
    ["provider", "outcome"],
)
send_lag_seconds = Histogram(
    "campaign_send_lag_seconds",
    "From the time a touch was due to the time its provider took it.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
provider_request_seconds = Histogram(
    "campaign_provider_request_duration_seconds",
    "Provider API calls, by provider and endpoint, failures included.",
    ["provider", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
send_due_backlog = Gauge(
    "campaign_send_due_backlog",
    "Touches due now and not yet claimed (active enrollments past their next action time),"
    " as this sender last counted them.",
    multiprocess_mode="mostrecent",
)
send_blocked = Gauge(
    "campaign_send_blocked_instances",
    "Active instances whose due touches wait because a provider has no credentials"
    " (production), by provider.",
    ["provider"],
    multiprocess_mode="mostrecent",
)

_operation_names: set[str] = set()

M = TypeVar("M", bound=MetricWrapperBase)


@functools.cache
def labelled(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, remembered: the lookup (checks, a lock) costs more than the
    increment on paths that run per request. Every label here has a bounded set of values."""
    return metric.labels(*values)


def fastpath_fell_back(reason: str) -> None:
    """Listener for resolvers.fast_execution: one more query handed to the standard executor."""
    graphql_fastpath_fallbacks_total.labels(reason=reason).inc()


def operation_label(name: str) -> str:
    """``name``, or ``other`` once MAX_OPERATION_NAMES distinct names have been seen."""
    if name in _operation_names:
        return name
    if len(_operation_names) >= MAX_OPERATION_NAMES:
        return "other"
    _operation_names.add(name)
    return name


POOL_HELP = (
    "Database connections of this process's pool (of every worker's, under serve --workers N):"
    " in_use (checked out), idle (checked in), capacity (pool size plus overflow). in_use at"
    " capacity for long means requests queue for a connection: the pool is too small."
)
_pool_gauge = Gauge(
    "campaign_db_pool_connections",
    POOL_HELP,
    ["state"],
    multiprocess_mode="livesum",
    registry=None,  # multiprocess mode only: alone, the collector below reads the pools live
)


class _PoolCollector(Collector):
    """Reads the connection pools through their public counts: at scrape time in a process on
    its own; under several workers, each publishes its counts every POOL_PUBLISH_EVERY_S (and
    the worker answering a scrape just before), and the scrape sums the live workers'."""

    def __init__(self) -> None:
        self._engines: dict[AsyncEngine, int] = {}
        self._publisher: asyncio.Task[None] | None = None

    def watch(self, engine: AsyncEngine, capacity: int) -> None:
        self._engines[engine] = capacity
        if MULTIPROCESS_DIR and self._publisher is None:
            self._publisher = asyncio.get_running_loop().create_task(self._publish_forever())

    def unwatch(self, engine: AsyncEngine) -> None:
        self._engines.pop(engine, None)
        if not self._engines and self._publisher is not None:
            self._publisher.cancel()
            self._publisher = None
            self.publish()

    def counts(self) -> dict[str, int]:
        in_use = idle = capacity = 0
        for engine, engine_capacity in self._engines.items():
            pool: Any = engine.sync_engine.pool
            in_use += pool.checkedout()
            idle += pool.checkedin()
            capacity += engine_capacity
        return {"in_use": in_use, "idle": idle, "capacity": capacity}

    def publish(self) -> None:
        for state, count in self.counts().items():
            _pool_gauge.labels(state).set(count)

    async def _publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(POOL_PUBLISH_EVERY_S)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("campaign_db_pool_connections", POOL_HELP, labels=["state"])
        for state, count in self.counts().items():
            family.add_metric([state], count)
        yield family


class _ServiceInfo(Collector):
    """Which host, process group and process answered the scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "campaign_service_info",
            "Always 1: the host, the process group (serve's workers share one) and the process"
            " that answered this scrape; group says whether the figures are the group's"
            " (multiprocess) or this process's alone (process).",
            labels=["host", "process_group", "pid", "group"],
        )
        family.add_metric(
            [
                socket.gethostname(),
                str(os.getpgrp()),
                str(os.getpid()),
                "multiprocess" if MULTIPROCESS_DIR else "process",
            ],
            1,
        )
        yield family


class _ProcessGroup(Collector):
    """Every worker's values, merged from the multiprocess directory at each scrape."""

    def __init__(self, path: str) -> None:
        self._files = MultiProcessCollector(None, path)

    def collect(self) -> Iterator[Metric]:
        _pools.publish()  # the answering worker's own counts are read now
        yield from self._files.collect()


_pools = _PoolCollector()
_service_info = _ServiceInfo()


def _scrape_registry() -> CollectorRegistry:
    if MULTIPROCESS_DIR is None:
        REGISTRY.register(_pools)
        REGISTRY.register(_service_info)
        return REGISTRY
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_ProcessGroup(MULTIPROCESS_DIR))
    registry.register(_service_info)
    return registry


scrape_registry = _scrape_registry()
"""What /metrics and the metrics listener serve."""


def watch_pool(engine: AsyncEngine, capacity: int) -> None:
    """Report ``engine``'s pool (at most ``capacity`` connections) until ``unwatch_pool``;
    called by the application's lifespan, in its event loop."""
    _pools.watch(engine, capacity)


def unwatch_pool(engine: AsyncEngine) -> None:
    _pools.unwatch(engine)


def render() -> bytes:
    """The metrics in Prometheus' text exposition format."""
    return generate_latest(scrape_registry)
