"""``dispatch status`` (each started instance's sending figures, as a table) and ``dispatch
retry`` (send failed or unknown touches again: one by id, or all of an instance's)."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import CommandError, Commands, run_with_session
from app.domain.enums import DispatchStatus
from app.services.sending.operations import (
    instance_dispatch_ids,
    retry_dispatch,
    retry_dispatches,
    sending_table,
)
from app.settings import Settings

COLUMNS = ("instance", "due now", "in flight", "retrying", "failed", "unknown", "sent today")


def cmd_status(settings: Settings, args: argparse.Namespace) -> None:
    rows = run_with_session(settings, sending_table)
    if not rows:
        print("no started instances")
        return
    table = [
        (
            f"{row.name[:40]} ({row.instance_id[:8]})",
            row.due_now,
            row.in_flight,
            row.retrying,
            row.failed,
            row.unknown,
            row.sent_today,
        )
        for row in rows
    ]
    lines: list[tuple[Any, ...]] = [COLUMNS, *table]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        cells = [str(v).rjust(w) for v, w in zip(line, widths, strict=True)]
        cells[0] = str(line[0]).ljust(widths[0])
        print("  ".join(cells))


def cmd_retry(settings: Settings, args: argparse.Namespace) -> None:
    if bool(args.dispatch_id) == bool(args.instance):
        raise CommandError("give either a dispatch id or --instance ID")

    async def work(session: AsyncSession) -> Any:
        if args.dispatch_id:
            await retry_dispatch(session, args.dispatch_id)
            return 1
        statuses = [DispatchStatus(s) for s in args.status or ("failed", "unknown")]
        ids = await instance_dispatch_ids(session, args.instance, statuses)
        rows = await retry_dispatches(session, ids)
        return sum(1 for row in rows if row.requeued)

    print(f"queued {run_with_session(settings, work)} touches to be sent again")


def register(commands: Commands) -> None:
    group = commands.add_parser("dispatch", help="see and retry what the senders do")
    sub = group.add_subparsers(dest="dispatch_command", required=True)
    sub.add_parser("status", help="each started instance's sending figures").set_defaults(
        handler=cmd_status
    )
    retry = sub.add_parser("retry", help="send failed or unknown touches again")
    retry.add_argument("dispatch_id", nargs="?", help="one dispatch")
    retry.add_argument("--instance", help="every matching dispatch of this instance")
    retry.add_argument(
        "--status",
        action="append",
        choices=[DispatchStatus.FAILED.value, DispatchStatus.UNKNOWN.value],
        help="with --instance: which (repeatable; default both)",
    )
    retry.set_defaults(handler=cmd_retry, status=None)
