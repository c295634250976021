"""Serving the metrics without a key on a separate address (``CAMPAIGN_METRICS_BIND``) that
only the monitoring network can reach: for the API's workers and for senders alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from app.observability.logs import get_logger
from app.settings import parse_bind

log = get_logger("metrics")


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
