"""Serving the metrics: ``GET /metrics`` for admin keys, and optionally a key-less listener on a
separate address (``CAMPAIGN_METRICS_BIND``) that only the monitoring network can reach."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server
from starlette.requests import Request
from starlette.responses import Response

from app.domain.enums import Scope
from app.observability import metrics
from app.observability.logs import get_logger
from app.settings import parse_bind
from app.web.auth import principal_for
from app.web.errors import UNAUTHENTICATED_MESSAGE, json_error

log = get_logger("metrics")


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format; 401 without a valid key, 403 without the admin scope."""
    principal = await principal_for(request)
    if principal is None:
        return json_error(
            401,
            "UNAUTHENTICATED",
            UNAUTHENTICATED_MESSAGE,
            headers={"WWW-Authenticate": 'Bearer realm="campaign-api"'},
        )
    request.state.principal = principal
    if not principal.allows(Scope.ADMIN):
        return json_error(403, "FORBIDDEN", "reading metrics needs an API key with 'admin' scope")
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


@contextmanager
def metrics_listener(bind: str | None) -> Iterator[None]:
    """Serve the metrics without authentication on ``bind`` while the block runs.

    A second worker process cannot bind the same address: it logs that and carries on, since
    its metrics stay readable through ``/metrics``.
    """
    if not bind:
        yield
        return
    host, port = parse_bind(bind)
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics_bind_failed", bind=bind, reason=str(exc))
        yield
        return
    log.info("metrics_listening", bind=bind)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
