"""``serve`` (uvicorn, one or several workers) and ``dev`` (what ``make run`` does)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import dev_secrets
from app.cli.common import (
    CommandError,
    Commands,
    add_command,
    check_database,
    check_port_free,
    run_with_session,
)
from app.cli.database import cmd_migrate, cmd_seed
from app.domain.enums import Scope
from app.observability.logs import configure_logging
from app.security.api_keys import create_api_key, hash_key
from app.settings import Settings, get_settings, parse_forwarded_allow_ips

APP_FACTORY = "app.web.asgi:create_served_app"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def cores_available() -> int:
    """The cores this process may run on (its affinity: a container's or taskset's limit),
    not the machine's count."""
    return len(os.sched_getaffinity(0))


def worker_count(requested: str | None, settings: Settings) -> int:
    """``--workers``: a number, or ``auto`` for one per available core; unset, ``auto`` in
    production and 1 elsewhere (``make run`` stays one process)."""
    if requested is None:
        requested = "auto" if settings.is_production else "1"
    if requested.strip().lower() == "auto":
        return cores_available()
    try:
        count = int(requested)
    except ValueError:
        raise CommandError(f"--workers: {requested!r} is neither a number nor 'auto'") from None
    if not 1 <= count <= 256:
        raise CommandError(f"--workers: {count} is out of range (1 to 256, or 'auto')")
    return count


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """The multiprocess metrics directory of one ``serve --workers N``, set in the environment
    the workers inherit, emptied first (files of an earlier run would be counted again): the
    operator's PROMETHEUS_MULTIPROC_DIR if set, else a temporary directory removed at the end."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="campaign-api-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def _exit_zero_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, host: str, port: int, workers: int, reload: bool) -> None:
    """uvicorn with our logging: no log config of its own (its records go through structlog)
    and no access log (the access middleware writes a richer, redacted line per request).
    Several workers each listen on a socket of their own (``app.web.worker_sockets``)."""
    import uvicorn

    from app.web.http_protocol import guarded_protocol
    from app.web.worker_sockets import run_workers

    configure_logging(settings)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    # it found: with this one, a shutdown that was asked for and completed exits 0.
    signal.signal(signal.SIGTERM, _exit_zero_on_sigterm)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "access_log": False,
        # On SIGTERM: stop accepting, let requests in flight finish for this long, then close.
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        # Bounded heads, head and body timeouts, a connection cap (app.web.http_protocol).
        "http": guarded_protocol(settings),
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: nothing is
        # trusted but the peers CAMPAIGN_FORWARDED_ALLOW_IPS names.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }
    if workers > 1 and not reload:
        with metrics_directory():
            run_workers(
                APP_FACTORY,
                workers,
                timeout_worker_healthcheck=settings.worker_healthcheck_s,
                **options,
            )
        return
    uvicorn.run(APP_FACTORY, factory=True, workers=workers, reload=reload, **options)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    workers = worker_count(args.workers, settings)
    if args.forwarded_allow_ips is not None:
        try:
            trusted = ",".join(parse_forwarded_allow_ips(args.forwarded_allow_ips))
        except ValueError as exc:
            raise CommandError(f"--forwarded-allow-ips: {exc}") from None
        settings = settings.model_copy(update={"forwarded_allow_ips": trusted})
    check_database(settings)
    host, port = args.host or settings.host, args.port or settings.port
    _serve(settings, host, port, workers, args.reload)


def _development_key(settings: Settings) -> str:
    """The development key kept in ``.data/dev-api-key`` (mode 600), created when missing."""
    key_file = settings.data_dir / "dev-api-key"

    async def work(session: AsyncSession) -> str:
        if key_file.exists():
            key = key_file.read_text().strip()
            found = await session.execute(
                text("SELECT 1 FROM api_keys WHERE key_hash = :h AND NOT revoked"),
                {"h": hash_key(key)},
            )
            if found.first() is not None:
                return key
        taken = await session.scalar(
            text("SELECT count(*) FROM api_keys WHERE name LIKE 'development%'")
        )
        name = "development" if not taken else f"development-{taken + 1}"
        return await create_api_key(session, name, frozenset(Scope))

    key: str = run_with_session(settings, work)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def cmd_dev(settings: Settings, args: argparse.Namespace) -> None:
    """What ``make run`` does: migrate, seed an empty database, print a key, serve."""
    if settings.is_production:
        raise CommandError("'dev' is for development; use 'migrate' and 'serve' in production")
    from app.cli.seed import is_empty

    # Before a key is made and printed for a server that could not listen.
    check_port_free(args.host or settings.host, args.port or settings.port)
    cmd_migrate(settings, args)
    if run_with_session(settings, is_empty):
        cmd_seed(settings, args)
    key = _development_key(settings)
    host, port = args.host or settings.host, args.port or settings.port
    webhook_secrets = dev_secrets.development_webhook_secrets(settings)
    dev_secrets.export(webhook_secrets)
    get_settings.cache_clear()  # the server this process starts reads them from the environment
    print(
        f"\nGraphiQL: http://{host}:{port}/graphql\n"
        f"Development API key (all scopes; kept in {settings.data_dir / 'dev-api-key'}):\n"
        f"  {key}\n"
        f'In GraphiQL\'s Headers tab: {{"Authorization": "Bearer {key}"}}\n'
        + dev_secrets.describe(webhook_secrets, f"http://{host}:{port}"),
        flush=True,
    )
    with _sender_beside():
        _serve(settings, host, port, 1, args.reload)


@contextlib.contextmanager
def _sender_beside() -> Iterator[None]:
    """One sender process next to the development server, so a started campaign progresses
    (dry run unless provider credentials are set); stopped with the server."""
    sender = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--metrics-bind", ""])
    print(f"Sender running beside the API (pid {sender.pid}).", flush=True)
    try:
        yield
    finally:
        sender.terminate()
        try:
            sender.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sender.kill()


def register(commands: Commands) -> None:
    for name, handler, help_text in (
        ("serve", cmd_serve, "serve the API with uvicorn"),
        ("dev", cmd_dev, "migrate, seed when empty, print a development key, serve"),
    ):
        sub = add_command(commands, name, handler, help_text)
        sub.add_argument("--host", help="bind address (default: CAMPAIGN_HOST)")
        sub.add_argument("--port", type=int, help="port (default: CAMPAIGN_PORT)")
        sub.add_argument("--reload", action="store_true", help="restart on code changes")
        if name == "serve":
            sub.add_argument(
                "--workers",
                metavar="N|auto",
                help="worker processes, or 'auto' for one per available core (default: auto"
                " in production, 1 otherwise)",
            )
            sub.add_argument(
                "--forwarded-allow-ips",
                metavar="IPS",
                help="comma-separated proxy addresses or networks (or *) whose X-Forwarded-For "
                "is trusted (default: CAMPAIGN_FORWARDED_ALLOW_IPS, unset: none)",
            )
