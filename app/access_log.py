"""One structured log line and the HTTP metrics per request, from a pure ASGI middleware.

What the inner layers learn (who called, which GraphQL operation) they leave in
``scope["state"]``: ``principal`` (an ``app.auth.Principal``) and ``graphql_operation``
(a ``GraphQLOperation``). The line never carries the key itself, only its name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.logs import get_logger
from app.request_context import current_request_id
from app.sql_observer import counting_statements

UNMATCHED_ROUTE = "unmatched"

log = get_logger("access")


@dataclass(frozen=True, slots=True)
class GraphQLOperation:
    name: str
    type: str
    """``query`` or ``mutation``."""


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/graphql``, ``/static``): bounded, unlike paths."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class AccessLogMiddleware:
    """Place it right inside RequestIdMiddleware, so that every line carries the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # unless a response starts: an exception escaped the application
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with counting_statements() as statements:
            try:
                await self.app(scope, receive, send_and_watch)
            finally:
                self._record(scope, state, status, time.perf_counter() - started, statements.value)

    @staticmethod
    def _record(
        scope: Scope, state: dict[str, Any], status: int, seconds: float, statements: int
    ) -> None:
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
