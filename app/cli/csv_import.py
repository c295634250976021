"""Enrolling a large CSV of contacts in batches through the same service as bulkEnroll.

Each batch is its own transaction: a malformed row is reported with its line number and never
enrolled, and never undoes the batches already committed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import CrossCampaignPolicy, ErrorCode
from app.domain.errors import DomainError
from app.domain.limits import BULK_ENROLL_MAX
from app.observability import metrics
from app.services.enrollment import ContactInput, Skipped, bulk_enroll, check_contact


@dataclass(slots=True)
class ImportSummary:
    enrolled: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of every well-formed row that was not enrolled."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of every row that was not sent."""
    moved: list[tuple[int, str]] = field(default_factory=list)
    """(line number, what was removed) of every row enrolled by MOVE out of another instance."""


def _rows(path: Path, summary: ImportSummary) -> Iterator[tuple[int, ContactInput]]:
    """Valid contacts with their line numbers; invalid rows go to ``summary.rejected``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "contact_id" not in reader.fieldnames:
            raise DomainError(
                ErrorCode.INVALID, f"{path.name} has no 'contact_id' column in its header line"
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                summary.rejected.append((reader.line_num, f"unreadable row: {exc}"))
                continue
            line = reader.line_num
            if None in row:
                summary.rejected.append((line, "more fields than the header has"))
                continue
            contact_id = row.pop("contact_id")
            metadata = {k: v for k, v in row.items() if k and v not in (None, "")}
            contact = ContactInput(contact_id=contact_id, metadata=metadata)
            _, problems = check_contact(contact)
            if problems:
                summary.rejected.append((line, "; ".join(p.message for p in problems)))
                continue
            yield line, contact


def _skip_reason(skipped: Skipped, lines: list[int]) -> str:
    """The reason as the operator reads it: a repeat names the line it repeats (the service's
    message counts positions in the batch, which are not line numbers)."""
    if skipped.repeats is not None:
        return f"{skipped.reason.value}: repeats line {lines[skipped.repeats]}"
    return f"{skipped.reason.value}: {skipped.message}"


async def import_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    instance_id: str,
    path: Path,
    progress: Callable[[int], None] = lambda rows: None,
    batch_size: int = BULK_ENROLL_MAX,
    policy: CrossCampaignPolicy | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    batch: list[ContactInput] = []
    lines: list[int] = []

    async def flush() -> None:
        async with sessionmaker.begin() as session:
            result = await bulk_enroll(session, instance_id, batch, policy)
        summary.enrolled += len(result.enrolled_ids)
        metrics.enrollments_created_total.labels("csv").inc(len(result.enrolled_ids))
        summary.skipped.extend((lines[s.index], _skip_reason(s, lines)) for s in result.skipped)
        summary.moved.extend(
            (
                lines[m.index],
                f"MOVED: from instance {m.from_instance_id} (enrollment {m.from_enrollment_id}"
                " removed)",
            )
            for m in result.moved
        )
        progress(len(batch))
        batch.clear()
        lines.clear()

    rejected_seen = 0
    for line, contact in _rows(path, summary):
        batch.append(contact)
        lines.append(line)
        if len(batch) >= batch_size:
            await flush()
        if len(summary.rejected) > rejected_seen:
            progress(len(summary.rejected) - rejected_seen)
            rejected_seen = len(summary.rejected)
    if batch:
        await flush()
    progress(len(summary.rejected) - rejected_seen)
    return summary
