"""``migrate``, ``seed`` and ``export-schema``."""

from __future__ import annotations

import argparse
import sys

from alembic.util import CommandError as AlembicError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.cli.common import (
    CommandError,
    Commands,
    add_command,
    check_database,
    database_problem,
    describe_url,
    run_with_session,
)
from app.db import migrate
from app.settings import Settings


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    url = check_database(settings, migrated=False)
    try:
        migrate.upgrade(url)
    except (DBAPIError, OSError, SQLAlchemyError) as exc:
        raise database_problem(exc, url) from None
    except AlembicError as exc:
        raise CommandError(f"cannot migrate the database at {describe_url(url)}: {exc}") from None
    print(f"database at {describe_url(url)} migrated to {migrate.head_revision()}")


def cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    from app.cli.seed import seed

    added = run_with_session(settings, seed)
    print("seed: demo data added" if added else "seed: demo data already present, nothing added")


def cmd_export_schema(settings: Settings | None, args: argparse.Namespace) -> None:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


def register(commands: Commands) -> None:
    add_command(
        commands, "migrate", cmd_migrate, "upgrade the database schema to the latest revision"
    )
    add_command(commands, "seed", cmd_seed, "add the demo data (idempotent)")
    add_command(commands, "export-schema", cmd_export_schema, "print the GraphQL schema (SDL)")
