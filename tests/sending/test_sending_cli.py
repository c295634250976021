"""The operators' sending commands, run as an operator runs them (``campaign-api`` subprocesses
on the test database): ``suppressions import`` (all or nothing) and ``export``, ``dispatch
status`` and ``dispatch retry``, and ``enroll``'s report of the rows it skipped and why."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.enums import Channel, SuppressionReason
from app.services import enrollment
from app.services.suppression import add_suppressions
from testkit.campaigns import build_campaign, contact
from tests.sending.conftest import LOST, REFUSED, RETRIED, Run, rows, sending_figures

CLI = Path(sys.executable).parent / "campaign-api"


async def cli(cwd: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PYTHONWARNINGS") and not key.startswith("CAMPAIGN_")
    }
    env["DATABASE_URL"] = database_url
    return await asyncio.to_thread(
        subprocess.run,
        [str(CLI), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def reported_lines(stdout: str) -> dict[int, str]:
    """``line N: problem`` lines of a command's report."""
    return {
        int(m.group(1)): m.group(2) for m in re.finditer(r"^\s+line (\d+): (.*)$", stdout, re.M)
    }


async def suppression_rows(engine: AsyncEngine) -> list[tuple[str, str, str, datetime]]:
    found = await rows(
        engine,
        "SELECT channel::text, address, reason::text, created_at FROM suppressions"
        " ORDER BY created_at, id",
    )
    return [tuple(r) for r in found]  # type: ignore[misc]


async def audit_rows(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    found = await rows(engine, "SELECT address, action, actor FROM suppression_changes")
    return sorted(tuple(r) for r in found)  # type: ignore[misc]


# --- suppressions import / export ---------------------------------------------------------------

BAD_FILE = """channel,address,reason
email,fine@example.com,manual
sms,someone@example.com,manual
email,not-an-address,manual
email,angry@example.com,furious
linkedin,https://example.com/in/ada,
email,extra@example.com,manual,surplus
email,,manual
"""
BAD_LINES = [3, 4, 5, 6, 7, 8]
GOOD_FILE = """channel,address,reason
email, Ada@Example.COM ,manual
linkedin,https://www.linkedin.com/in/Grace-H/?trk=x,unsubscribed
,bob@example.com,
email,ADA@example.com,manual
linkedin,www.linkedin.com/in/grace-h,unsubscribed
email,carl@example.com,spam_complaint
"""
# What the good file means: its distinct addresses, normalized, with their reasons.
GOOD = {
    ("email", "ada@example.com", "manual"),
    ("linkedin", "linkedin.com/in/grace-h", "unsubscribed"),
    ("email", "bob@example.com", "manual"),
    ("email", "carl@example.com", "spam_complaint"),
}
GOOD_ROWS = 6


async def test_suppressions_import_is_all_or_nothing_repeat_safe_and_export_round_trips(
    engine: AsyncEngine, clean_db: None, database_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_FILE, encoding="utf-8")
    refused = await cli(tmp_path, database_url, "suppressions", "import", str(bad))
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    problems = reported_lines(refused.stdout)
    assert sorted(problems) == BAD_LINES, refused.stdout
    assert "channel" in problems[3]
    assert "e-mail" in problems[4]
    assert "reason" in problems[5]
    assert "LinkedIn" in problems[6]
    assert "field" in problems[7]
    assert "missing" in problems[8]
    assert f"{len(BAD_LINES)} bad lines" in refused.stdout
    assert await suppression_rows(engine) == []  # the good line 2 was not imported either
    assert await audit_rows(engine) == []

    good = tmp_path / "good.csv"
    good.write_text(GOOD_FILE, encoding="utf-8")
    first = await cli(tmp_path, database_url, "suppressions", "import", str(good))
    assert first.returncode == 0, (first.stdout, first.stderr)
    assert first.stdout.strip() == (
        f"imported {len(GOOD)} suppressions ({GOOD_ROWS - len(GOOD)} already on the list)"
    )
    stored = await suppression_rows(engine)
    assert {r[:3] for r in stored} == GOOD
    actor = f"cli:{getpass.getuser()}"
    assert await audit_rows(engine) == sorted((a, "added", actor) for _, a, _ in GOOD)

    again = await cli(tmp_path, database_url, "suppressions", "import", str(good))
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert again.stdout.strip() == f"imported 0 suppressions ({GOOD_ROWS} already on the list)"
    assert await suppression_rows(engine) == stored

    exported = await cli(tmp_path, database_url, "suppressions", "export")
    assert exported.returncode == 0, exported.stderr
    listed = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [
        (r["channel"], r["address"], r["reason"], datetime.fromisoformat(r["created_at"]))
        for r in listed
    ] == stored
    # The export imports back into an empty list as the same list.
    copy = tmp_path / "export.csv"
    copy.write_text(exported.stdout, encoding="utf-8")
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM suppressions"))
    restored = await cli(tmp_path, database_url, "suppressions", "import", str(copy))
    assert restored.returncode == 0, (restored.stdout, restored.stderr)
    assert {r[:3] for r in await suppression_rows(engine)} == GOOD


# --- dispatch status / retry --------------------------------------------------------------------

STATUS_COLUMNS = ["due now", "in flight", "retrying", "failed", "unknown", "sent today"]


def status_table(stdout: str) -> dict[str, list[int]]:
    """``dispatch status``'s table: instance id prefix -> the figures in column order."""
    header, *lines = stdout.strip().splitlines()
    assert re.split(r"\s{2,}", header.strip()) == ["instance", *STATUS_COLUMNS], header
    table = {}
    for line in lines:
        match = re.fullmatch(r"(.*) \(([0-9a-f]{8})\)\s+" + r"\s+".join([r"(\d+)"] * 6), line)
        assert match, line
        table[match.group(2)] = [int(v) for v in match.groups()[2:]]
    return table


async def dispatch_of(engine: AsyncEngine, enrollment_id: str, step: int) -> Any:
    [row] = await rows(
        engine,
        "SELECT id::text, status::text, attempts FROM dispatches"
        " WHERE enrollment_id = CAST(:e AS uuid) AND step_number = :s",
        e=enrollment_id,
        s=step,
    )
    return row


async def test_dispatch_status_and_retry(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    run: Run,
    database_url: str,
    tmp_path: Path,
) -> None:
    instance_id = run.campaign.instance_id
    async with app_sessionmaker.begin() as session:  # two contacts due now, not yet claimed
        await enrollment.bulk_enroll(session, instance_id, [contact(n) for n in (100, 101)])

    status = await cli(tmp_path, database_url, "dispatch", "status")
    assert status.returncode == 0, status.stderr
    figures = await sending_figures(engine, instance_id)
    expected = [
        figures.due_now,
        figures.in_flight,
        figures.retrying,
        figures.failed,
        figures.unknown,
        figures.sent_today,
    ]
    assert status_table(status.stdout) == {instance_id[:8]: expected}
    assert min(figures.due_now, figures.failed, figures.unknown, figures.sent_today) > 0

    gave_up = await dispatch_of(engine, run.enrollment_of[RETRIED], 1)
    one = await cli(tmp_path, database_url, "dispatch", "retry", gave_up.id)
    assert one.returncode == 0, (one.stdout, one.stderr)
    assert one.stdout.strip() == "queued 1 touches to be sent again"
    requeued = await dispatch_of(engine, run.enrollment_of[RETRIED], 1)
    assert (requeued.status, requeued.attempts) == ("queued", 0)

    sent = await dispatch_of(engine, run.enrollment_of[LOST], 1)
    refused = await cli(tmp_path, database_url, "dispatch", "retry", sent.id)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "campaign-api: only a failed or unknown dispatch can be retried; this one is sent"
    )

    # Of the instance's failed and unknown touches, those whose enrollment still runs.
    [[retryable]] = await rows(
        engine,
        "SELECT count(*) FROM dispatches d JOIN enrollments e ON e.id = d.enrollment_id"
        " WHERE d.instance_id = CAST(:i AS uuid) AND d.status IN ('failed', 'unknown')"
        " AND e.status IN ('active', 'paused')",
        i=instance_id,
    )
    assert retryable > 0
    every = await cli(tmp_path, database_url, "dispatch", "retry", "--instance", instance_id)
    assert every.returncode == 0, (every.stdout, every.stderr)
    assert every.stdout.strip() == f"queued {retryable} touches to be sent again"
    lost = await dispatch_of(engine, run.enrollment_of[LOST], 2)
    assert (lost.status, lost.attempts) == ("queued", 0)
    refused_for_good = await dispatch_of(engine, run.enrollment_of[REFUSED], 1)
    assert refused_for_good.status == "failed"  # its enrollment failed: not sent again


# --- enroll -------------------------------------------------------------------------------------

CONTACTS_FILE = """contact_id,email,first_name,company
c1,c1@example.com,Ann,Acme
c2,,Ben,Acme
c3,SUPPRESSED@Example.com,Cy,Acme
c4,not-an-address,Di,Acme
c5,c5@example.com,,Acme
c1,c1-again@example.com,Ann,Acme
c6,c6@example.com,Eve,
"""
SKIPPED = {
    3: "ADDRESS_MISSING",
    4: "SUPPRESSED",
    5: "ADDRESS_INVALID",
    6: "VARIABLE_MISSING",  # {{first_name}} has no fallback; {{company|...}} has one
    7: "DUPLICATE_IN_REQUEST",
}


async def test_enroll_reports_each_skipped_row_with_its_line_and_reason(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
) -> None:
    campaign = await build_campaign(app_sessionmaker, 0, template_type="email")
    async with app_sessionmaker.begin() as session:
        await add_suppressions(
            session, [(Channel.EMAIL, "suppressed@example.com")], SuppressionReason.MANUAL, "t"
        )
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS_FILE, encoding="utf-8")

    result = await cli(
        tmp_path, database_url, "enroll", campaign.instance_id, str(contacts), "--quiet"
    )
    assert result.returncode == 0, (result.stdout, result.stderr)  # skipped, none rejected
    assert result.stdout.splitlines()[0] == (
        f"enrolled 2, skipped {len(SKIPPED)}, rejected 0, moved 0"
    )
    reported = reported_lines(result.stdout)
    assert {line: reason.split(":")[0] for line, reason in reported.items()} == SKIPPED
    assert "metadata.email" in reported[4]
    found = await rows(
        engine,
        "SELECT contact_id FROM enrollments WHERE instance_id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    assert sorted(r[0] for r in found) == ["c1", "c6"]
