"""``orphans relink|purge`` and ``counters check [--fix]``: keeping stored events and counters
honest."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import Commands, describe_duration, parse_duration, run_with_session
from app.settings import Settings


def cmd_orphans_relink(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.ingestion.orphans import relink_orphans

    print(f"relinked {run_with_session(settings, relink_orphans)} orphaned events")


def cmd_orphans_purge(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.ingestion.orphans import purge_orphans

    age = parse_duration(args.older_than, "--older-than")

    async def work(session: AsyncSession) -> int:
        return await purge_orphans(session, age)

    purged = run_with_session(settings, work)
    print(f"purged {purged} orphaned events older than {describe_duration(age)}")


def cmd_counters_check(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 1 when counters differ from the events and --fix was not given."""
    from app.services.ingestion.counters import check_counters, fix_counters

    async def work(session: AsyncSession) -> Any:
        differences = await check_counters(session)
        if differences and args.fix:
            await fix_counters(session)
        return differences

    differences = run_with_session(settings, work)
    for d in differences:
        print(f"{d.instance_id}\t{d.counter}\tstored {d.stored}\tfrom events {d.recomputed}")
    if not differences:
        print("counters match the events")
        return 0
    if args.fix:
        print(f"fixed {len(differences)} counters")
        return 0
    return 1


def register(commands: Commands) -> None:
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
