"""``api-key create|list|rotate|revoke``."""

from __future__ import annotations

import argparse
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import Commands, describe_duration, parse_duration, run_with_session
from app.domain.enums import Scope
from app.security.api_keys import (
    DEFAULT_ROTATION_GRACE,
    create_api_key,
    list_api_keys,
    parse_scopes,
    revoke_api_key,
    rotate_api_key,
)
from app.settings import Settings

LIST_HEADER = ("NAME", "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED", "OLD SECRET UNTIL")


def _when(moment: datetime | None, otherwise: str) -> str:
    return moment.isoformat(timespec="seconds") if moment else otherwise


def cmd_api_key_create(settings: Settings, args: argparse.Namespace) -> None:
    scopes = parse_scopes(args.scopes)
    expires_in = (
        None if args.expires_in is None else parse_duration(args.expires_in, "--expires-in")
    )

    async def work(session: AsyncSession) -> str:
        return await create_api_key(session, args.name, scopes, expires_in)

    key = run_with_session(settings, work)
    expiry = "" if expires_in is None else f"; expires in {describe_duration(expires_in)}"
    print(f"API key {args.name!r} ({', '.join(sorted(scopes))}){expiry}; shown once, store it now:")
    print(key)


def cmd_api_key_list(settings: Settings, args: argparse.Namespace) -> None:
    keys = run_with_session(settings, list_api_keys)
    if not keys:
        print("no API keys")
        return
    print("\t".join(LIST_HEADER))
    for key in keys:
        row = (
            key.name,
            ",".join(key.scopes),
            key.state,
            _when(key.created_at, "-"),
            _when(key.expires_at, "never"),
            _when(key.last_used_at, "never"),
            _when(key.previous_valid_until, "-"),
        )
        print("\t".join(row))


def cmd_api_key_rotate(settings: Settings, args: argparse.Namespace) -> None:
    grace = parse_duration(args.grace, "--grace")
    expires_in = (
        None if args.expires_in is None else parse_duration(args.expires_in, "--expires-in")
    )

    async def work(session: AsyncSession) -> str:
        return await rotate_api_key(session, args.name, grace, expires_in)

    key = run_with_session(settings, work)
    old = (
        f"the old secret works for {describe_duration(grace)} more"
        if grace
        else "the old secret no longer works"
    )
    expiry = "" if expires_in is None else f"; expires in {describe_duration(expires_in)}"
    print(f"API key {args.name!r} rotated ({old}{expiry}); new secret shown once, store it now:")
    print(key)


def cmd_api_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> None:
        await revoke_api_key(session, args.name)

    run_with_session(settings, work)
    print(f"API key {args.name!r} revoked")


def register(commands: Commands) -> None:
    keys = commands.add_parser("api-key", help="create, list, rotate and revoke API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="read", help="comma-separated: " + ",".join(Scope))
    create.add_argument(
        "--expires-in", help="refuse the key after this long, e.g. 90d, 12h, 30m (default: never)"
    )
    create.set_defaults(handler=cmd_api_key_create)
    key_commands.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        handler=cmd_api_key_list
    )
    rotate = key_commands.add_parser(
        "rotate", help="give a key a new secret, print it once; the old one works for --grace"
    )
    rotate.add_argument("name")
    rotate.add_argument(
        "--grace",
        default=f"{int(DEFAULT_ROTATION_GRACE.total_seconds() // 3600)}h",
        help="how long the old secret keeps working, e.g. 24h, 30m, 0s (default: %(default)s)",
    )
    rotate.add_argument(
        "--expires-in", help="a new expiry, counted from now (default: the key's own, if any)"
    )
    rotate.set_defaults(handler=cmd_api_key_rotate)
    revoke = key_commands.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_api_key_revoke)
