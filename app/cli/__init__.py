"""campaign-api: serve, migrate, seed, manage API keys, enroll, check events and counters.

Every command runs against ``DATABASE_URL`` or, in development, the embedded PostgreSQL.
Configuration and connection problems end the command with one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from app.cli import (
    contacts,
    database,
    dispatch,
    enroll,
    keys,
    maintenance,
    serve,
    suppressions,
    worker,
)
from app.cli.common import CommandError
from app.domain.errors import DomainError, DomainErrors
from app.settings import ConfigError, Settings, get_settings

COMMAND_GROUPS = (
    serve,
    worker,
    database,
    enroll,
    dispatch,
    suppressions,
    contacts,
    maintenance,
    keys,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-api", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
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
