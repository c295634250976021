"""Every Prometheus metric of the service, in one place, so that a new one is one line here.

Metrics live in this process's registry: with several uvicorn workers each worker counts its
own requests (see the README, "Metrics"). Edges (middleware, webhook routes, resolvers, the
CSV command) record; app/services stays unaware of them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

CONTENT_TYPE = CONTENT_TYPE_LATEST
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
    "GraphQL subscriptions open on this process.",
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
graphql_fastpath_fallbacks_total = Counter(
    "campaign_graphql_fastpath_fallbacks",
    "GraphQL requests the fast execution path handed back to the regular executor, by reason.",
    ["reason"],
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
)
send_blocked = Gauge(
    "campaign_send_blocked_instances",
    "Active instances whose due touches wait because a provider has no credentials"
    " (production), by provider.",
    ["provider"],
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


class _PoolCollector(Collector):
    """Reads the connection pools at scrape time, through their public counts: nothing to keep
    in step between scrapes."""

    def __init__(self) -> None:
        self._engines: dict[AsyncEngine, int] = {}

    def watch(self, engine: AsyncEngine, capacity: int) -> None:
        self._engines[engine] = capacity

    def unwatch(self, engine: AsyncEngine) -> None:
        self._engines.pop(engine, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "campaign_db_pool_connections",
            "Database connections of this process's pool: in_use (checked out), idle (checked"
            " in), capacity (pool size plus overflow). in_use at capacity for long means"
            " requests queue for a connection: the pool is too small.",
            labels=["state"],
        )
        in_use = idle = capacity = 0
        for engine, engine_capacity in self._engines.items():
            pool: Any = engine.sync_engine.pool
            in_use += pool.checkedout()
            idle += pool.checkedin()
            capacity += engine_capacity
        family.add_metric(["in_use"], in_use)
        family.add_metric(["idle"], idle)
        family.add_metric(["capacity"], capacity)
        yield family


_pools = _PoolCollector()
REGISTRY.register(_pools)


def watch_pool(engine: AsyncEngine, capacity: int) -> None:
    """Report ``engine``'s pool (at most ``capacity`` connections) until ``unwatch_pool``;
    called by the application's lifespan."""
    _pools.watch(engine, capacity)


def unwatch_pool(engine: AsyncEngine) -> None:
    _pools.unwatch(engine)


def render() -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(REGISTRY)
