"""``worker``: the sender, a long-running process. Run as many as the load needs, on one
machine or many; they share the work through PostgreSQL. SIGTERM (or Ctrl-C) finishes the
sends in flight, records them, hands back what was not started, and exits 0."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.common import Commands, add_command, check_database
from app.db import migrate
from app.db.engine import create_engine
from app.observability.listener import metrics_listener
from app.observability.logs import configure_logging, get_logger
from app.providers.clients import build_clients
from app.providers.http import create_client
from app.services.sending.record import Timing
from app.settings import Settings, parse_bind
from app.worker.sender import RECORDERS, SenderLoop, SenderOptions

log = get_logger("sender")


def pool_size(concurrency: int) -> int:
    """The claim (or the outlook), each recorder and lease renewal hold one connection each,
    and one more is spare; the check just before a touch leaves takes one per request in
    flight, briefly (for PhantomBuster and lemlist, one per touch), so a quarter of the
    concurrency more keeps those from queueing behind each other."""
    return RECORDERS + 3 + concurrency // 4


MIGRATION_POLL_S = 2.0


def options_from(settings: Settings, concurrency: int | None, batch: int | None) -> SenderOptions:
    return SenderOptions(
        concurrency=concurrency or settings.send_concurrency,
        batch=batch or settings.send_batch,
        lease_s=settings.send_lease_s,
        idle_s=settings.send_idle_s,
        timing=Timing(
            base_s=settings.send_retry_base_s,
            max_s=settings.send_retry_max_s,
            max_attempts=settings.send_max_attempts,
        ),
    )


async def run_sender(settings: Settings, url: str, options: SenderOptions) -> None:
    """Run a sender until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(
        settings.model_copy(
            update={"pool_size": pool_size(options.concurrency), "max_overflow": 0}
        ),
        url,
    )
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    http = create_client(settings.send_http_timeout_s, connections=options.concurrency)
    try:
        if await _migrated(engine, stop):
            sender = SenderLoop(engine, dsn, build_clients(settings, http), options)
            with metrics_listener(settings.metrics_bind):
                await sender.run(stop)
    finally:
        await http.aclose()
        await engine.dispose()


async def _migrated(engine: AsyncEngine, stop: asyncio.Event) -> bool:
    """Wait until the schema is at the migrations' head (a deployment migrates from another
    container); False when stopped first."""
    expected = migrate.head_revision()
    warned = False
    while not stop.is_set():
        async with engine.connect() as connection:
            current = await connection.run_sync(migrate.current_revision)
        if current == expected:
            return True
        if not warned:
            log.warning("sender_waits_for_migrations", current=current, expected=expected)
            warned = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MIGRATION_POLL_S)
    return False


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    if args.metrics_bind is not None:
        settings = settings.model_copy(update={"metrics_bind": args.metrics_bind or None})
    url = check_database(settings, migrated=False)  # it waits for the migration itself
    configure_logging(settings)
    asyncio.run(run_sender(settings, url, options_from(settings, args.concurrency, args.batch)))


def register(commands: Commands) -> None:
    worker = add_command(
        commands, "worker", cmd_worker, "run a sender: deliver the due touches of started campaigns"
    )
    worker.add_argument(
        "--concurrency",
        type=positive,
        help="provider requests in flight (default: CAMPAIGN_SEND_CONCURRENCY)",
    )
    worker.add_argument(
        "--batch", type=positive, help="touches claimed at a time (default: CAMPAIGN_SEND_BATCH)"
    )
    worker.add_argument(
        "--metrics-bind",
        type=metrics_bind,
        help="host:port serving this sender's /metrics without a key (default:"
        " CAMPAIGN_METRICS_BIND; an empty value turns it off)",
    )


def metrics_bind(value: str) -> str:
    if value:
        try:
            parse_bind(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def positive(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return number
