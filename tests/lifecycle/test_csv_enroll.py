"""``campaign-api enroll INSTANCE_ID file.csv``, run as an operator runs it: a subprocess on the
test database. Valid rows are enrolled with their personalization columns as metadata, each
rejected row is reported with its line number (the header is line 1), exit code 1 when any row
was rejected, and a second run enrolls nothing."""

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
)

CLI = Path(sys.executable).parent / "campaign-api"
TIMEOUT_S = 60
FIRST_DELAY = 1

LONG_ID = "L" * 300
# (line number, row) after the header line; None marks a row the importer must reject.
ROWS = [
    (2, "crm-1,Ada,Acme", {"first_name": "Ada", "company": "Acme"}),
    (3, "crm-2,Bob,", {"first_name": "Bob"}),
    (4, ",Carl,Initech", None),  # blank contact_id
    (5, "crm-3,Dee,Globex,surplus", None),  # more fields than the header
    (6, f"{LONG_ID},Eve,Hooli", None),  # contact_id of 300 characters
    (7, 'crm-4,Fay,"Umbrella, Inc."', {"first_name": "Fay", "company": "Umbrella, Inc."}),
    (8, "crm-5,Gus,Stark", {"first_name": "Gus", "company": "Stark"}),
]
VALID = {line: meta for line, _, meta in ROWS if meta is not None}
REJECTED_LINES = [line for line, _, meta in ROWS if meta is None]


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


def _summary(stdout: str) -> tuple[int, int, int, list[int]]:
    """(enrolled, skipped, rejected, rejected line numbers) from the command's report."""
    lines = stdout.strip().splitlines()
    match = re.fullmatch(r"enrolled (\d+), skipped (\d+) .*, rejected (\d+)", lines[0])
    assert match, stdout
    reported = [int(m.group(1)) for m in (re.match(r"\s+line (\d+): ", x) for x in lines[1:]) if m]
    assert len(reported) == len(lines) - 1, stdout  # every further line names a line number
    enrolled, skipped, rejected = (int(g) for g in match.groups())
    return enrolled, skipped, rejected, reported


async def test_csv_enroll_reports_rejected_lines_and_is_repeat_safe(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, FIRST_DELAY)])
    instance_id = await instance_in(client, write_key, engine, template_id, "active")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "contact_id,first_name,company\n" + "".join(f"{row}\n" for _, row, _ in ROWS),
        encoding="utf-8",
    )

    clock_before = await db_now(engine)
    first = await _run(tmp_path, database_url, "enroll", instance_id, str(csv_file), "--quiet")
    clock_after = await db_now(engine)

    assert first.returncode == 1, (first.stdout, first.stderr)
    assert first.stderr == "", first.stderr  # --quiet: no progress bar
    assert _summary(first.stdout) == (len(VALID), 0, len(REJECTED_LINES), REJECTED_LINES)
    reasons = dict(
        (int(m.group(1)), m.group(2)) for m in re.finditer(r"line (\d+): (.*)", first.stdout)
    )
    assert "contact" in reasons[4].lower()
    assert "field" in reasons[5].lower()
    assert "contact" in reasons[6].lower()
    assert "300" in reasons[6]

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
    assert _summary(second.stdout) == (0, len(VALID), len(REJECTED_LINES), REJECTED_LINES)
    assert await enrollment_rows(engine, instance_id) == list(
        sorted(rows.values(), key=lambda r: r["contact_id"])
    )
    assert (await instance_row(engine, instance_id))["total_enrolled"] == len(VALID)
