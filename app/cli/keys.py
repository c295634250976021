"""``api-key create|list|revoke``."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import Commands, run_with_session
from app.domain.enums import Scope
from app.security.api_keys import create_api_key, list_api_keys, parse_scopes, revoke_api_key
from app.settings import Settings


def cmd_api_key_create(settings: Settings, args: argparse.Namespace) -> None:
    scopes = parse_scopes(args.scopes)

    async def work(session: AsyncSession) -> str:
        return await create_api_key(session, args.name, scopes)

    key = run_with_session(settings, work)
    print(f"API key {args.name!r} ({', '.join(sorted(scopes))}); shown once, store it now:")
    print(key)


def cmd_api_key_list(settings: Settings, args: argparse.Namespace) -> None:
    keys = run_with_session(settings, list_api_keys)
    if not keys:
        print("no API keys")
    for key in keys:
        state = "revoked" if key.revoked else "active"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        print(f"{key.name}\t{','.join(key.scopes)}\t{state}\tlast used {used}")


def cmd_api_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> None:
        await revoke_api_key(session, args.name)

    run_with_session(settings, work)
    print(f"API key {args.name!r} revoked")


def register(commands: Commands) -> None:
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
