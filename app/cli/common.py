"""What every command shares: running work against the configured database, and turning the
problems a user can act on into one line."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeAlias

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


def run_with_sessionmaker(
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
        raise database_problem(exc, url) from None


def run_with_session(
    settings: Settings, work: Callable[[AsyncSession], Coroutine[Any, Any, Any]]
) -> Any:
    """Run ``work`` in one committed transaction."""

    async def in_transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        async with sessionmaker.begin() as session:
            return await work(session)

    return run_with_sessionmaker(settings, in_transaction)


def check_database(settings: Settings) -> str:
    """Connect once so that a wrong URL fails now, in one line, not in the first request."""
    url = resolve_database_url(settings)

    async def probe(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))

    run_with_session(settings, probe)
    return url
