"""``enroll INSTANCE CSV``: contacts from a CRM export, in batches of 10,000."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli.common import CommandError, Commands, add_command, run_with_sessionmaker
from app.domain.enums import CrossCampaignPolicy
from app.settings import Settings


def cmd_enroll(settings: Settings, args: argparse.Namespace) -> int:
    """Enroll a CSV of contacts in batches of 10,000; every row not enrolled is listed with its
    line number (skipped: already enrolled, repeated, no address, a missing variable,
    suppressed, open in another instance under SKIP; moved: enrolled here under MOVE, naming the
    instance left; rejected: malformed). Exit 1 when any row was rejected."""
    from tqdm import tqdm

    from app.cli.csv_import import import_csv

    path = Path(args.csv)
    if not path.is_file():
        raise CommandError(f"{path} is not a readable file")
    with path.open("rb") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        with tqdm(total=total, unit=" rows", file=sys.stderr, disable=args.quiet) as bar:
            return await import_csv(
                sessionmaker, args.instance_id, path, bar.update, policy=args.policy
            )

    summary = run_with_sessionmaker(settings, work)
    print(
        f"enrolled {summary.enrolled}, skipped {len(summary.skipped)},"
        f" rejected {len(summary.rejected)}, moved {len(summary.moved)}"
    )
    for line, reason in sorted(summary.rejected + summary.skipped + summary.moved):
        print(f"  line {line}: {reason}")
    return 1 if summary.rejected else 0


def _policy(value: str) -> CrossCampaignPolicy:
    """``--policy``, in either case; an unknown value is refused before anything is read."""
    try:
        return CrossCampaignPolicy(value.strip().lower())
    except ValueError:
        known = ", ".join(p.value for p in CrossCampaignPolicy)
        raise argparse.ArgumentTypeError(f"unknown policy {value!r}: use one of {known}") from None


def register(commands: Commands) -> None:
    enroll = add_command(
        commands, "enroll", cmd_enroll, "enroll the contacts of a CSV file (column contact_id)"
    )
    enroll.add_argument("instance_id")
    enroll.add_argument("csv", help="contact_id plus personalization columns (become metadata)")
    enroll.add_argument("--quiet", action="store_true", help="no progress bar")
    enroll.add_argument(
        "--policy",
        type=_policy,
        default=None,
        help=(
            "contacts open in another instance: allow, skip or move (default: the template's"
            " settings.cross_campaign_policy, else allow)"
        ),
    )
