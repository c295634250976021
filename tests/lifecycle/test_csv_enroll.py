"""``campaign-api enroll INSTANCE_ID file.csv``, run as an operator runs it: a subprocess on the
test database. Valid rows are enrolled with their personalization columns as metadata; every row
not enrolled is reported with its line number (the header is line 1): rejected (malformed) and
skipped (no address, an invalid one, a variable the steps need, a suppressed address, a repeat,
already enrolled), each with its reason. Exit code 1 when any row was rejected, and a second run
enrolls nothing."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    create_template,
    db_now,
    engine_of,
    enrollment_rows,
    instance_in,
    instance_row,
    suppress,
)

CLI = Path(sys.executable).parent / "campaign-api"
TIMEOUT_S = 60
FIRST_DELAY = 1

LONG_ID = "L" * 300
SUPPRESSED = "blocked@acme.example"
HEADER = "contact_id,first_name,company,email"
# (line number, row, outcome) after the header line: the metadata an enrolled row is stored
# with, "rejected" for a row the importer must refuse as malformed, or the reason it is skipped.
ROWS: list[tuple[int, str, dict[str, str] | str]] = [
    (
        2,
        "crm-1,Ada,Acme,ada@acme.example",
        {"first_name": "Ada", "company": "Acme", "email": "ada@acme.example"},
    ),
    (3, "crm-2,Bob,,bob@example.com", {"first_name": "Bob", "email": "bob@example.com"}),
    (4, ",Carl,Initech,carl@initech.example", "rejected"),  # blank contact_id
    (5, "crm-3,Dee,Globex,dee@globex.example,surplus", "rejected"),  # more fields than the header
    (6, f"{LONG_ID},Eve,Hooli,eve@hooli.example", "rejected"),  # contact_id of 300 characters
    (
        7,
        'crm-4,Fay,"Umbrella, Inc.",fay@umbrella.example',
        {"first_name": "Fay", "company": "Umbrella, Inc.", "email": "fay@umbrella.example"},
    ),
    (
        8,
        "crm-5,Gus,Stark,gus@stark.example",
        {"first_name": "Gus", "company": "Stark", "email": "gus@stark.example"},
    ),
    (9, "crm-6,Hal,Hooli,", "ADDRESS_MISSING"),
    (10, "crm-7,Ivy,Acme,not-an-address", "ADDRESS_INVALID"),
    (11, "crm-8,,Acme,kim@acme.example", "VARIABLE_MISSING"),  # the body uses {{first_name}}
    (12, f"crm-9,Lea,Acme,{SUPPRESSED}", "SUPPRESSED"),
    (13, "crm-1,Ada again,Acme,ada@acme.example", "DUPLICATE_IN_REQUEST"),
]
VALID = {line: outcome for line, _, outcome in ROWS if isinstance(outcome, dict)}
REJECTED_LINES = [line for line, _, outcome in ROWS if outcome == "rejected"]
SKIPPED = {
    line: outcome for line, _, outcome in ROWS if isinstance(outcome, str) and outcome != "rejected"
}


def _environment(database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PYTHONWARNINGS") and not key.startswith("CAMPAIGN_")
    }
    env["DATABASE_URL"] = database_url
    return env


async def _run(cwd: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CLI.exists(), f"{CLI} is missing: install the project"
    return await asyncio.to_thread(
        subprocess.run,
        [str(CLI), *args],
        env=_environment(database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _summary(stdout: str) -> tuple[int, int, int, dict[int, str]]:
    """(enrolled, skipped, rejected, reason by line number) from the command's report."""
    lines = stdout.strip().splitlines()
    # No policy is given and the template has none (ALLOW): nothing is ever moved.
    match = re.fullmatch(r"enrolled (\d+), skipped (\d+), rejected (\d+), moved 0", lines[0])
    assert match, stdout
    reported = [re.match(r"\s+line (\d+): (.+)", x) for x in lines[1:]]
    assert all(reported), stdout  # every further line names a line number and a reason
    reasons = {int(m.group(1)): m.group(2) for m in reported if m}
    assert len(reasons) == len(lines) - 1, stdout  # one line per row
    assert list(reasons) == sorted(reasons), stdout  # in file order
    enrolled, skipped, rejected = (int(g) for g in match.groups())
    return enrolled, skipped, rejected, reasons


async def test_csv_enroll_reports_rejected_and_skipped_lines_and_is_repeat_safe(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, FIRST_DELAY)])
    instance_id = await instance_in(client, write_key, engine, template_id, "active")
    await suppress(client, admin_key, SUPPRESSED)
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        HEADER + "\n" + "".join(f"{row}\n" for _, row, _ in ROWS),
        encoding="utf-8",
    )

    clock_before = await db_now(engine)
    first = await _run(tmp_path, database_url, "enroll", instance_id, str(csv_file), "--quiet")
    clock_after = await db_now(engine)

    assert first.returncode == 1, (first.stdout, first.stderr)
    assert first.stderr == "", first.stderr  # --quiet: no progress bar
    enrolled, skipped, rejected, reasons = _summary(first.stdout)
    assert (enrolled, skipped, rejected) == (len(VALID), len(SKIPPED), len(REJECTED_LINES))
    assert set(reasons) == set(REJECTED_LINES) | set(SKIPPED)
    assert "contact" in reasons[4].lower()
    assert "field" in reasons[5].lower()
    assert "contact" in reasons[6].lower()
    assert "300" in reasons[6]
    for line, reason in SKIPPED.items():
        assert reasons[line].startswith(f"{reason}: "), (line, reasons[line])
    assert "email" in reasons[9]
    assert "email" in reasons[10]
    assert "first_name" in reasons[11]
    assert reasons[13] == "DUPLICATE_IN_REQUEST: repeats line 2"  # its first occurrence

    # Committed by the subprocess, visible to the test's own connections.
    rows = {r["contact_id"]: r for r in await enrollment_rows(engine, instance_id)}
    expected_ids = {"crm-1", "crm-2", "crm-4", "crm-5"}
    assert set(rows) == expected_ids
    by_line = dict(zip(sorted(VALID), ["crm-1", "crm-2", "crm-4", "crm-5"], strict=True))
    for line, metadata in VALID.items():
        stored = rows[by_line[line]]["metadata"]
        assert {k: v for k, v in stored.items() if v != ""} == metadata, (line, stored)
    assert {r["status"] for r in rows.values()} == {"active"}
    delay = timedelta(hours=FIRST_DELAY)  # due after the first step, counted from enrollment
    for contact, row in rows.items():
        assert clock_before + delay <= row["next_action_at"] <= clock_after + delay, contact
    assert (await instance_row(engine, instance_id))["total_enrolled"] == len(VALID)

    second = await _run(tmp_path, database_url, "enroll", instance_id, str(csv_file), "--quiet")

    assert second.returncode == 1, (second.stdout, second.stderr)
    enrolled, skipped, rejected, reasons = _summary(second.stdout)
    assert (enrolled, skipped, rejected) == (0, len(VALID) + len(SKIPPED), len(REJECTED_LINES))
    assert set(reasons) == set(REJECTED_LINES) | set(SKIPPED) | set(VALID)
    for line in VALID:
        assert reasons[line].startswith("ALREADY_ENROLLED: "), (line, reasons[line])
    for line, reason in SKIPPED.items():
        assert reasons[line].startswith(f"{reason}: "), (line, reasons[line])
    assert await enrollment_rows(engine, instance_id) == list(
        sorted(rows.values(), key=lambda r: r["contact_id"])
    )
    assert (await instance_row(engine, instance_id))["total_enrolled"] == len(VALID)
