"""``contacts erase ID`` and ``contacts erase --file CSV``: erase contacts' personal data.

Each contact is erased in its own transaction, so one unknown id in a file does not keep the
others from being erased; every line is reported (erased, already erased, or why not), and the
exit code is 1 when any line could not be erased (2 for a single id, as for every command's
refusal). Running the same file again is safe: the
contacts already erased are reported as such and nothing changes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli.common import CommandError, Commands, run_with_session, run_with_sessionmaker
from app.cli.suppressions import actor
from app.domain.errors import DomainError, DomainErrors
from app.services.erasure import Erasure, erase_contact
from app.settings import Settings

MAX_ROWS = 100_000


def read_contact_ids(path: Path) -> list[tuple[int, str]]:
    """(line number, contact id) of every data line of the CSV (column ``contact_id``)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "contact_id" not in reader.fieldnames:
                raise CommandError(f"{path.name} has no 'contact_id' column in its header line")
            found = [(reader.line_num, row.get("contact_id") or "") for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"{path.name} is not a readable CSV file: {exc}") from None
    if len(found) > MAX_ROWS:
        raise CommandError(f"{path.name} has more than {MAX_ROWS} rows")
    return found


def describe(erasure: Erasure) -> str:
    if erasure.already_erased:
        return f"already erased on {erasure.erased_at.isoformat()} by {erasure.actor}"
    return (
        f"erased ({erasure.enrollments} enrollments, {erasure.events} events,"
        f" {erasure.dispatches} dispatches, {erasure.addresses} addresses now hashed)"
    )


def _refusal(exc: DomainError | DomainErrors) -> str:
    errors = exc.errors if isinstance(exc, DomainErrors) else (exc,)
    return "; ".join(e.message for e in errors)


def cmd_erase(settings: Settings, args: argparse.Namespace) -> int:
    if (args.contact_id is None) == (args.file is None):
        raise CommandError("give either a contact id or --file CSV (not both)")
    who = actor()
    if args.file is None:
        erasure = run_with_session(settings, lambda s: erase_contact(s, args.contact_id, who))
        print(describe(erasure))
        return 0
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path} is not a readable file")
    lines = read_contact_ids(path)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[int, str, bool]]:
        report = []
        for line, contact_id in lines:
            try:
                async with sessionmaker.begin() as session:
                    erasure = await erase_contact(session, contact_id, who)
                report.append((line, describe(erasure), True))
            except (DomainError, DomainErrors) as exc:
                report.append((line, _refusal(exc), False))
        return report

    report = run_with_sessionmaker(settings, work)
    for line, message, _ in report:
        print(f"  line {line}: {message}")
    failed = sum(1 for *_, ok in report if not ok)
    print(f"{len(report) - failed} contacts erased or already erased, {failed} not")
    return 1 if failed else 0


def register(commands: Commands) -> None:
    group = commands.add_parser("contacts", help="erase contacts' personal data")
    sub = group.add_subparsers(dest="contacts_command", required=True)
    erase = sub.add_parser(
        "erase",
        help="erase a contact (or every contact_id of a CSV): personal data gone, counts kept,"
        " its addresses suppressed as hashes",
    )
    erase.add_argument("contact_id", nargs="?", help="the CRM's contact id")
    erase.add_argument("--file", help="a CSV with a contact_id column; each line is reported")
    erase.set_defaults(handler=cmd_erase)
