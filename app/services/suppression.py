"""The suppression list as operators keep it: add addresses (one, or a CSV), remove one, list.

A suppression holds for every instance: adding one stops, without a touch more, every
running enrollment with that address (``unsubscribed``, or ``bounced`` for a bounce), in the
same transaction. Every addition and removal is kept in ``suppression_changes`` with its
actor; removing one is an operator's decision that must stay answerable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import addresses
from app.domain.enums import Channel, ErrorCode, SuppressionReason
from app.domain.errors import DomainError

_ADD = text(
    """
    WITH input AS (
        SELECT DISTINCT ON (channel, address) channel, address
        FROM unnest(CAST(:channels AS channel[]), CAST(:addresses AS text[]))
             AS u(channel, address)
        ORDER BY channel, address
    ), added AS (
        INSERT INTO suppressions (channel, address, reason, created_by)
        SELECT channel, address, CAST(:reason AS suppression_reason), :actor FROM input
        ORDER BY channel, address
        ON CONFLICT (channel, address) DO NOTHING
        RETURNING channel, address
    ), audited AS (
        INSERT INTO suppression_changes (channel, address, action, reason, actor)
        SELECT channel, address, 'added', CAST(:reason AS suppression_reason), :actor FROM added
    )
    SELECT channel::text, address FROM added
    """
)


_STOP_RUNNING = text(
    """
    WITH hit AS (
        SELECT e.id FROM enrollment_addresses a
        JOIN enrollments e ON e.id = a.enrollment_id
        WHERE a.channel = CAST(:channel AS channel)
          AND a.address = ANY(CAST(:addresses AS text[]))
          AND e.status IN ('enrolled', 'active', 'paused')
        ORDER BY e.id
        FOR NO KEY UPDATE OF e
    ), stopped AS (
        UPDATE enrollments e
        SET status = CAST(:status AS enrollment_status), next_action_at = NULL,
            unsubscribed_at = CASE WHEN :status = 'unsubscribed' THEN now()
                                   ELSE e.unsubscribed_at END
        FROM hit WHERE e.id = hit.id
        RETURNING e.id
    )
    UPDATE dispatches d SET status = 'cancelled', next_attempt_at = NULL
    FROM stopped WHERE d.enrollment_id = stopped.id AND d.status = 'queued'
    """
)
"""Running enrollments of the given addresses stop (locked in id order); their queued touches
are cancelled."""


async def stop_running(
    session: AsyncSession, channel: Channel, normalized: Sequence[str], status: str
) -> None:
    """Stop every running enrollment of these addresses (``unsubscribed`` or ``bounced``)."""
    await session.execute(
        _STOP_RUNNING, {"channel": channel.value, "addresses": list(normalized), "status": status}
    )


@dataclass(slots=True)
class AddResult:
    added: int = 0
    already: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    """(position in the input, problem) of each entry that is not an address."""


def check_entry(channel: Channel, raw: str) -> str:
    """The normalized address, or a DomainError naming the problem."""
    problem = addresses.problem(channel, raw)
    if problem is not None:
        raise DomainError(ErrorCode.INVALID, f"address is {problem}", ("address",))
    return addresses.normalize(channel, raw)


async def add_suppressions(
    session: AsyncSession,
    entries: Sequence[tuple[Channel, str]],
    reason: SuppressionReason,
    actor: str,
) -> AddResult:
    """Add every valid entry (set-based; repeats and existing ones are counted, not errors)."""
    result = AddResult()
    valid: list[tuple[Channel, str]] = []
    for index, (channel, raw) in enumerate(entries):
        problem = addresses.problem(channel, raw)
        if problem is None:
            valid.append((channel, addresses.normalize(channel, raw)))
        else:
            result.invalid.append((index, f"{channel.value} address is {problem}"))
    if not valid:
        return result
    rows = (
        await session.execute(
            _ADD,
            {
                "channels": [c.value for c, _ in valid],
                "addresses": [a for _, a in valid],
                "reason": reason.value,
                "actor": actor,
            },
        )
    ).all()
    result.added = len(rows)
    result.already = len(valid) - len(rows)
    status = "bounced" if reason is SuppressionReason.BOUNCED else "unsubscribed"
    for channel in Channel:
        fresh = [row[1] for row in rows if row[0] == channel.value]
        if fresh:
            await stop_running(session, channel, fresh, status)
    return result


async def add_suppression(
    session: AsyncSession, channel: Channel, raw: str, reason: SuppressionReason, actor: str
) -> uuid.UUID:
    """One address (addSuppression): its suppression's id, new or already there."""
    address = check_entry(channel, raw)
    await add_suppressions(session, [(channel, address)], reason, actor)
    found = await session.scalar(
        text("SELECT id FROM suppressions WHERE channel = CAST(:c AS channel) AND address = :a"),
        {"c": channel.value, "a": address},
    )
    return uuid.UUID(str(found))


async def remove_suppression(session: AsyncSession, channel: Channel, raw: str, actor: str) -> bool:
    """Remove one suppression; False when there was none. Enrollments it stopped stay
    stopped: removal only lets the address be enrolled again."""
    address = check_entry(channel, raw)
    removed = (
        await session.execute(
            text(
                "WITH gone AS (DELETE FROM suppressions"
                " WHERE channel = CAST(:channel AS channel) AND address = :address"
                " RETURNING channel, address, reason)"
                " INSERT INTO suppression_changes (channel, address, action, reason, actor)"
                " SELECT channel, address, 'removed', reason, :actor FROM gone RETURNING id"
            ),
            {"channel": channel.value, "address": address, "actor": actor},
        )
    ).first()
    return removed is not None


async def export_suppressions(session: AsyncSession) -> list[tuple[str, str, str, str]]:
    """Every suppression as (channel, address, reason, created_at ISO), oldest first."""
    rows = await session.execute(
        text(
            "SELECT channel::text, address, reason::text, created_at FROM suppressions"
            " ORDER BY created_at, id"
        )
    )
    return [(r[0], r[1], r[2], r[3].isoformat()) for r in rows]
