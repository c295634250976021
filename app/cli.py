"""``campaign-api``: serve, migrate, seed, manage API keys, export the schema.

Every command runs against ``DATABASE_URL`` or, in development, the embedded PostgreSQL.
Configuration and connection problems end the command with one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

from alembic.util import CommandError as AlembicError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import migrate
from app.auth import create_api_key, hash_key, list_api_keys, parse_scopes, revoke_api_key
from app.db import create_engine, create_sessionmaker, resolve_database_url
from app.domain.enums import Scope
from app.domain.errors import DomainError, DomainErrors
from app.logs import configure_logging
from app.settings import ConfigError, Settings, get_settings


class CommandError(Exception):
    """A failure the user can act on, printed as one line."""


def _describe_url(url: str) -> str:
    """Where the database is, without the password."""
    parsed = make_url(url)
    where = parsed.query.get("host") or f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"{where}/{parsed.database}"


def _database_problem(exc: BaseException, url: str) -> CommandError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return CommandError(f"cannot use the database at {_describe_url(url)}: {reason}")


def _run_with_sessionmaker(
    settings: Settings,
    work: Callable[[async_sessionmaker[AsyncSession]], Coroutine[Any, Any, Any]],
) -> Any:
    """Run ``work`` with a sessionmaker on the configured database."""
    url = resolve_database_url(settings)

    async def runner() -> Any:
        engine = create_engine(settings, url)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(runner())
    except (DBAPIError, OSError, SQLAlchemyError) as exc:
        raise _database_problem(exc, url) from None


def _run_with_session(
    settings: Settings, work: Callable[[AsyncSession], Coroutine[Any, Any, Any]]
) -> Any:
    """Run ``work`` in one committed transaction."""

    async def in_transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        async with sessionmaker.begin() as session:
            return await work(session)

    return _run_with_sessionmaker(settings, in_transaction)


def check_database(settings: Settings) -> str:
    """Connect once so that a wrong URL fails now, in one line, not in the first request."""
    url = resolve_database_url(settings)

    async def probe(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))

    _run_with_session(settings, probe)
    return url


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    url = check_database(settings)
    try:
        migrate.upgrade(url)
    except (DBAPIError, OSError, SQLAlchemyError) as exc:
        raise _database_problem(exc, url) from None
    except AlembicError as exc:
        raise CommandError(f"cannot migrate the database at {_describe_url(url)}: {exc}") from None
    print(f"database at {_describe_url(url)} migrated to {migrate.head_revision()}")


def cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    from app.seed import seed

    added = _run_with_session(settings, seed)
    print("seed: demo data added" if added else "seed: demo data already present, nothing added")


def cmd_api_key_create(settings: Settings, args: argparse.Namespace) -> None:
    scopes = parse_scopes(args.scopes)

    async def work(session: AsyncSession) -> str:
        return await create_api_key(session, args.name, scopes)

    key = _run_with_session(settings, work)
    print(f"API key {args.name!r} ({', '.join(sorted(scopes))}); shown once, store it now:")
    print(key)


def cmd_api_key_list(settings: Settings, args: argparse.Namespace) -> None:
    keys = _run_with_session(settings, list_api_keys)
    if not keys:
        print("no API keys")
    for key in keys:
        state = "revoked" if key.revoked else "active"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        print(f"{key.name}\t{','.join(key.scopes)}\t{state}\tlast used {used}")


def cmd_api_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> None:
        await revoke_api_key(session, args.name)

    _run_with_session(settings, work)
    print(f"API key {args.name!r} revoked")


def cmd_enroll(settings: Settings, args: argparse.Namespace) -> int:
    """Enroll a CSV of contacts in batches of 10,000; exit 1 when any row was rejected."""
    from tqdm import tqdm

    from app.csv_import import import_csv

    path = Path(args.csv)
    if not path.is_file():
        raise CommandError(f"{path} is not a readable file")
    with path.open("rb") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        with tqdm(total=total, unit=" rows", file=sys.stderr, disable=args.quiet) as bar:
            return await import_csv(sessionmaker, args.instance_id, path, bar.update)

    summary = _run_with_sessionmaker(settings, work)
    print(
        f"enrolled {summary.enrolled}, skipped {summary.skipped} (already enrolled or repeated),"
        f" rejected {len(summary.rejected)}"
    )
    for line, reason in summary.rejected:
        print(f"  line {line}: {reason}")
    return 1 if summary.rejected else 0


def cmd_orphans_relink(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.orphans import relink_orphans

    print(f"relinked {_run_with_session(settings, relink_orphans)} orphaned events")


def cmd_orphans_purge(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.orphans import parse_age, purge_orphans

    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        raise CommandError(str(exc)) from None

    async def work(session: AsyncSession) -> int:
        return await purge_orphans(session, age)

    print(f"purged {_run_with_session(settings, work)} orphaned events older than {age}")


def cmd_counters_check(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 1 when counters differ from the events and --fix was not given."""
    from app.services.counters import check_counters, fix_counters

    async def work(session: AsyncSession) -> Any:
        differences = await check_counters(session)
        if differences and args.fix:
            await fix_counters(session)
        return differences

    differences = _run_with_session(settings, work)
    for d in differences:
        print(f"{d.instance_id}\t{d.counter}\tstored {d.stored}\tfrom events {d.recomputed}")
    if not differences:
        print("counters match the events")
        return 0
    if args.fix:
        print(f"fixed {len(differences)} counters")
        return 0
    return 1


def cmd_export_schema(settings: Settings | None, args: argparse.Namespace) -> None:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


def _exit_zero_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, host: str, port: int, workers: int, reload: bool) -> None:
    """uvicorn with our logging: no log config of its own (its records go through structlog)
    and no access log (the access middleware writes a richer, redacted line per request).
    Several workers each listen on a socket of their own (``app.worker_sockets``), and each
    response leaves in one write (``app.one_write_http``)."""
    import uvicorn

    from app.one_write_http import OneWriteHttpToolsProtocol
    from app.worker_sockets import run_workers

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
        "http": OneWriteHttpToolsProtocol,
        # On SIGTERM: stop accepting, let requests in flight finish for this long, then close.
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
    }
    if workers > 1 and not reload:
        run_workers("app.main:create_served_app", workers, **options)
        return
    uvicorn.run(
        "app.main:create_served_app", factory=True, workers=workers, reload=reload, **options
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    check_database(settings)
    host, port = args.host or settings.host, args.port or settings.port
    _serve(settings, host, port, args.workers, args.reload)


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

    key: str = _run_with_session(settings, work)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def cmd_dev(settings: Settings, args: argparse.Namespace) -> None:
    """What ``make run`` does: migrate, seed an empty database, print a key, serve."""
    if settings.is_production:
        raise CommandError("'dev' is for development; use 'migrate' and 'serve' in production")
    from app.seed import is_empty

    cmd_migrate(settings, args)
    if _run_with_session(settings, is_empty):
        cmd_seed(settings, args)
    key = _development_key(settings)
    host, port = args.host or settings.host, args.port or settings.port
    print(
        f"\nGraphiQL: http://{host}:{port}/graphql\n"
        f"Development API key (all scopes; kept in {settings.data_dir / 'dev-api-key'}):\n"
        f"  {key}\n"
        f'In GraphiQL\'s Headers tab: {{"Authorization": "Bearer {key}"}}\n',
        flush=True,
    )
    _serve(settings, host, port, 1, args.reload)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-api", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[..., Any], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, help_text in (
        ("serve", cmd_serve, "serve the API with uvicorn"),
        ("dev", cmd_dev, "migrate, seed when empty, print a development key, serve"),
    ):
        sub = add(name, handler, help_text)
        sub.add_argument("--host", help="bind address (default: CAMPAIGN_HOST)")
        sub.add_argument("--port", type=int, help="port (default: CAMPAIGN_PORT)")
        sub.add_argument("--reload", action="store_true", help="restart on code changes")
        if name == "serve":
            sub.add_argument("--workers", type=int, default=1, help="worker processes")
    add("migrate", cmd_migrate, "upgrade the database schema to the latest revision")
    add("seed", cmd_seed, "add the demo data (idempotent)")
    add("export-schema", cmd_export_schema, "print the GraphQL schema (SDL)")
    enroll = add("enroll", cmd_enroll, "enroll the contacts of a CSV file (column contact_id)")
    enroll.add_argument("instance_id")
    enroll.add_argument("csv", help="contact_id plus personalization columns (become metadata)")
    enroll.add_argument("--quiet", action="store_true", help="no progress bar")

    orphans = commands.add_parser("orphans", help="relink or purge orphaned events")
    orphan_commands = orphans.add_subparsers(dest="orphan_command", required=True)
    orphan_commands.add_parser(
        "relink", help="attach orphans whose enrollment now exists, applying their effects"
    ).set_defaults(handler=cmd_orphans_relink)
    purge = orphan_commands.add_parser("purge", help="delete orphans older than an age")
    purge.add_argument("--older-than", required=True, help="e.g. 30d, 12h, 2w")
    purge.set_defaults(handler=cmd_orphans_purge)

    counters = commands.add_parser("counters", help="check instance counters against events")
    counter_commands = counters.add_subparsers(dest="counter_command", required=True)
    check = counter_commands.add_parser(
        "check", help="recompute counters from events; exit 1 on a difference"
    )
    check.add_argument("--fix", action="store_true", help="repair the differences found")
    check.set_defaults(handler=cmd_counters_check)

    keys = commands.add_parser("api-key", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="read", help="comma-separated: " + ",".join(Scope))
    create.set_defaults(handler=cmd_api_key_create)
    key_commands.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        handler=cmd_api_key_list
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_api_key_revoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[Settings | None, argparse.Namespace], int | None] = args.handler
    try:
        # export-schema needs no configuration, so a broken environment cannot stop it.
        status = handler(None if args.command == "export-schema" else get_settings(), args)
    except (ConfigError, CommandError) as exc:
        print(f"campaign-api: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"campaign-api: {exc.message}", file=sys.stderr)
        return 2
    except DomainErrors as exc:
        print(f"campaign-api: {'; '.join(e.message for e in exc.errors)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status or 0


if __name__ == "__main__":
    raise SystemExit(main())
