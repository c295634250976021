"""What every command shares: running work against the configured database, and turning the
problems a user can act on into one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import re
import socket
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import migrate
from app.db.embedded import resolve_database_url
from app.db.engine import create_engine, create_sessionmaker
from app.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers`` returns: each command group's ``register`` adds its commands to it."""


def add_command(
    commands: Commands, name: str, handler: Callable[..., Any], help_text: str
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


class CommandError(Exception):
    """A failure the user can act on, printed as one line."""


def describe_url(url: str) -> str:
    """Where the database is, without the password."""
    parsed = make_url(url)
    where = parsed.query.get("host") or f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"{where}/{parsed.database}"


def database_problem(exc: BaseException, url: str) -> CommandError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return CommandError(f"cannot use the database at {describe_url(url)}: {reason}")


NOT_MIGRATED = "database is not migrated: run `campaign-api migrate`"


async def require_migrated(engine: AsyncEngine) -> None:
    """Refuse, in one line, a database never migrated or behind this release's migrations,
    before a command stumbles on a missing table. A revision this release does not know (a
    newer release migrated it) is let through: additive migrations keep older code working."""
    async with engine.connect() as connection:
        current = await connection.run_sync(migrate.current_revision)
    if current is None:
        raise CommandError(NOT_MIGRATED)
    if migrate.is_behind(current):
        raise CommandError(
            f"database schema is at {current}, this release needs {migrate.head_revision()}:"
            " run `campaign-api migrate`"
        )


def run_with_sessionmaker(
    settings: Settings,
    work: Callable[[async_sessionmaker[AsyncSession]], Coroutine[Any, Any, Any]],
    *,
    migrated: bool = True,
) -> Any:
    """Run ``work`` with a sessionmaker on the configured database; unless ``migrated`` is
    False (migrating, probing), only once it is migrated."""
    url = resolve_database_url(settings)

    async def runner() -> Any:
        engine = create_engine(settings, url)
        try:
            if migrated:
                await require_migrated(engine)
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(runner())
    except (DBAPIError, OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
        # asyncpg's own errors come from the statements sent past SQLAlchemy (app.db.driver).
        raise database_problem(exc, url) from None


def run_with_session(
    settings: Settings,
    work: Callable[[AsyncSession], Coroutine[Any, Any, Any]],
    *,
    migrated: bool = True,
) -> Any:
    """Run ``work`` in one committed transaction."""

    async def in_transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        async with sessionmaker.begin() as session:
            return await work(session)

    return run_with_sessionmaker(settings, in_transaction, migrated=migrated)


def check_database(settings: Settings, *, migrated: bool = True) -> str:
    """Connect once so that a wrong URL (or, unless ``migrated`` is False, a database not
    migrated) fails now, in one line, not in the first request."""
    url = resolve_database_url(settings)

    async def probe(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))

    run_with_session(settings, probe, migrated=migrated)
    return url


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on, before anything is started or printed.

    Bound the way uvicorn binds (``SO_REUSEADDR``), so a port left in TIME_WAIT by a server
    that has just stopped still counts as free.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host!r}: {exc.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with contextlib.closing(socket.socket(family, kind, proto)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CommandError(f"port {port} is in use (another campaign-api?)") from None
                raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str, option: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w``; anything else is one line naming
    ``option``."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise CommandError(f"{option} {value!r} is not a duration like 90d, 12h, 30m or 2w")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise CommandError(f"{option} {value!r} is far too long") from None


def describe_duration(duration: timedelta) -> str:
    """In the largest whole unit: ``30 days``, ``12 hours``, ``1 minute``, ``90 seconds``."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
