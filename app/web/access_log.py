"""One structured log line and the HTTP metrics per request (``app.web.envelope`` calls
``record_request`` when the response is done).

What the inner layers learn (who called, which GraphQL operation) they leave in
``scope["state"]``: ``principal`` (an ``app.security.api_keys.Principal``) and ``graphql_operation``
(a ``GraphQLOperation``). The line never carries the key itself, only its name.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Scope

from app.observability import metrics
from app.observability.logs import get_logger
from app.observability.request_context import GraphQLOperation, current_request_id

UNMATCHED_ROUTE = "unmatched"

log = get_logger("access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/graphql``, ``/static``): bounded, unlike paths."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def record_request(
    scope: Scope, state: dict[str, Any], status: int, seconds: float, statements: int
) -> None:
    """The request's metrics, and its access line when INFO is on (every 5xx regardless)."""
    route = route_template(scope)
    method = scope["method"]
    principal = state.get("principal")
    operation: GraphQLOperation | None = state.get("graphql_operation")
    metrics.labelled(metrics.http_requests_total, route, method, str(status)).inc()
    metrics.labelled(metrics.sql_statements_per_request, route).observe(statements)
    if operation is not None:
        metrics.graphql_operation_seconds.labels(
            metrics.operation_label(operation.name), operation.type
        ).observe(seconds)
    if status < 500 and not log.isEnabledFor(logging.INFO):
        return  # a server logging warnings only: skip building a line nobody will see
    emit = log.error if status >= 500 else log.info
    emit(
        "request",
        request_id=current_request_id(),
        method=method,
        route=route,
        path=scope["path"],
        status=status,
        duration_ms=round(seconds * 1000, 1),
        sql_statements=statements,
        api_key_name=getattr(principal, "name", None),
        graphql_operation=operation.name if operation else None,
        graphql_type=operation.type if operation else None,
    )
