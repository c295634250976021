"""Serving the metrics without a key on a separate address (``CAMPAIGN_METRICS_BIND``) that
only the monitoring network can reach: for the API's workers and for senders alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from app.observability.logs import get_logger
from app.observability.metrics import scrape_registry
from app.settings import parse_bind

log = get_logger("metrics")


@contextmanager
def metrics_listener(bind: str | None) -> Iterator[None]:
    """Serve the metrics without authentication on ``bind`` while the block runs.

    Under several workers only the first binds the address; the others log that and carry on:
    whichever serves, it serves the whole group's metrics (and ``/metrics`` does too).
    """
    if not bind:
        yield
        return
    host, port = parse_bind(bind)
    try:
        server, thread = start_http_server(port, addr=host, registry=scrape_registry)
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
