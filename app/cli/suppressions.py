"""``suppressions import FILE`` and ``suppressions export [FILE]``: the suppression list as CSV
(columns ``channel,address,reason``; channel defaults to email, reason to manual).

An import is all or nothing: every bad line is reported with its number and nothing is
written, so fixing the file and running it again gives exactly the list intended.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import CommandError, Commands, run_with_session
from app.domain import addresses
from app.domain.enums import Channel, SuppressionReason
from app.services.suppression import AddResult, add_suppressions, export_suppressions
from app.settings import Settings

HEADER = ("channel", "address", "reason")
MAX_ROWS = 1_000_000


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def read_entries(
    path: Path,
) -> tuple[list[tuple[Channel, str, SuppressionReason]], list[tuple[int, str]]]:
    """The file's entries, and (line, problem) for every line that is not one."""
    entries: list[tuple[Channel, str, SuppressionReason]] = []
    problems: list[tuple[int, str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "address" not in reader.fieldnames:
                raise CommandError(f"{path.name} has no 'address' column in its header line")
            for row in reader:
                line = reader.line_num
                if None in row:
                    problems.append((line, "more fields than the header has"))
                    continue
                entry = _entry(row, line, problems)
                if entry is not None:
                    entries.append(entry)
                if len(entries) + len(problems) > MAX_ROWS:
                    raise CommandError(f"{path.name} has more than {MAX_ROWS} rows")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"{path.name} is not a readable CSV file: {exc}") from None
    return entries, problems


def _entry(
    row: dict[str, str], line: int, problems: list[tuple[int, str]]
) -> tuple[Channel, str, SuppressionReason] | None:
    raw_channel = (row.get("channel") or "email").strip().lower()
    raw_reason = (row.get("reason") or "manual").strip().lower()
    if raw_channel not in {c.value for c in Channel}:
        problems.append((line, f"channel must be email or linkedin, not {raw_channel[:40]!r}"))
        return None
    if raw_reason not in {r.value for r in SuppressionReason}:
        allowed = ", ".join(r.value for r in SuppressionReason)
        problems.append((line, f"reason must be one of {allowed}, not {raw_reason[:40]!r}"))
        return None
    channel = Channel(raw_channel)
    address = row.get("address") or ""
    problem = addresses.problem(channel, address)
    if problem is not None:
        problems.append((line, f"address is {problem}"))
        return None
    return channel, address, SuppressionReason(raw_reason)


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.csv)
    if not path.is_file():
        raise CommandError(f"{path} is not a readable file")
    entries, problems = read_entries(path)
    if problems:
        for line, problem in problems:
            print(f"  line {line}: {problem}")
        print(f"nothing imported: {len(problems)} bad lines; fix them and import again")
        return 1
    who = actor()

    async def work(session: AsyncSession) -> AddResult:
        total = AddResult()
        for reason in SuppressionReason:
            chosen = [(c, a) for c, a, r in entries if r is reason]
            if chosen:
                part = await add_suppressions(session, chosen, reason, who)
                total.added += part.added
                total.already += part.already
        return total

    result: AddResult = run_with_session(settings, work)
    print(f"imported {result.added} suppressions ({result.already} already on the list)")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    rows = run_with_session(settings, export_suppressions)
    if args.csv in (None, "-"):
        _write(sys.stdout, rows)
        return
    with Path(args.csv).open("w", newline="", encoding="utf-8") as handle:
        _write(handle, rows)
    print(f"exported {len(rows)} suppressions to {args.csv}", file=sys.stderr)


def _write(handle: TextIO, rows: list[tuple[str, str, str, str]]) -> None:
    writer = csv.writer(handle)
    writer.writerow((*HEADER, "created_at"))
    writer.writerows(rows)


def register(commands: Commands) -> None:
    group = commands.add_parser("suppressions", help="import or export the suppression list")
    sub = group.add_subparsers(dest="suppression_command", required=True)
    importing = sub.add_parser(
        "import", help="add the suppressions of a CSV (channel,address,reason); all or nothing"
    )
    importing.add_argument("csv")
    importing.set_defaults(handler=cmd_import)
    exporting = sub.add_parser("export", help="write the suppression list as CSV")
    exporting.add_argument("csv", nargs="?", help="a file; standard output when absent or -")
    exporting.set_defaults(handler=cmd_export)
