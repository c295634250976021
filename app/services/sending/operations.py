"""What operators see and do about sending: each instance's sending figures, and sending a
failed or unknown touch again (``retryDispatch``, ``campaign-api dispatch retry``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import DispatchStatus, ErrorCode, InstanceStatus, Provider, TemplateType
from app.domain.errors import DomainError
from app.services.sending import config as sending_config
from app.services.sending.config import ConfigProblem
from app.services.sending.wake import wake_senders
from app.services.sequence import used_channels
from app.services.validation import require_id


def _figures(where: str) -> str:
    return f"""
    SELECT i.id::text AS instance_id, i.name,
           (SELECT count(*) FROM enrollments e
            WHERE e.instance_id = i.id AND e.status = 'active'
              AND e.next_action_at IS NOT NULL AND e.next_action_at <= now()
              AND NOT EXISTS (SELECT 1 FROM dispatches d
                              WHERE d.enrollment_id = e.id
                                AND d.status IN ('queued', 'sending')))::int AS due_now,
           (SELECT min(e.next_action_at) FROM enrollments e
            WHERE e.instance_id = i.id AND e.status = 'active'
              AND e.next_action_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM dispatches d
                              WHERE d.enrollment_id = e.id
                                AND d.status IN ('queued', 'sending'))) AS next_due_at,
           coalesce(d.in_flight, 0)::int AS in_flight, coalesce(d.retrying, 0)::int AS retrying,
           coalesce(d.failed, 0)::int AS failed, coalesce(d.unknown, 0)::int AS unknown,
           (SELECT count(*) FROM dispatches s
            WHERE s.instance_id = i.id AND s.status = 'sent'
              AND s.sent_at >= (date_trunc('day', now() AT TIME ZONE z.tz) AT TIME ZONE z.tz)
           )::int AS sent_today
    FROM campaign_instances i
    CROSS JOIN LATERAL (
        SELECT coalesce(i.provider_config ->> 'timezone', 'UTC') AS tz
    ) z
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE status = 'sending') AS in_flight,
               count(*) FILTER (WHERE status = 'queued') AS retrying,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'unknown') AS unknown
        FROM dispatches
        WHERE instance_id = i.id AND status IN ('sending', 'queued', 'failed', 'unknown')
    ) d ON true
    {where}
"""


SENDING_FIGURES = _figures("WHERE i.id = ANY(CAST(:ids AS uuid[]))")
"""Per instance: touches due now, in flight, waiting for a retry, failed, unknown, sent today
(the instance's local day), and when the next touch is due; one statement for all."""


@dataclass(frozen=True, slots=True)
class SendingFigures:
    due_now: int = 0
    in_flight: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    sent_today: int = 0
    next_due_at: datetime | None = None


def waiting_on(
    status: InstanceStatus,
    provider_config: dict[str, Any],
    template_type: TemplateType,
    can_send: Callable[[Provider], bool],
) -> list[str]:
    """Why an active instance's due touches do not leave, in words an operator can act on."""
    if status is not InstanceStatus.ACTIVE:
        return []
    try:
        cfg = sending_config.parse(provider_config)
    except ConfigProblem as exc:
        return [f"provider_config: {exc}"]
    reasons = []
    for channel in used_channels(template_type):
        provider = cfg.provider(channel)
        if not can_send(provider):
            reasons.append(f"{provider.value} has no credentials in this deployment")
    return reasons


_RETRY = text(
    """
    WITH target AS (
        SELECT d.id, d.enrollment_id, d.status::text AS status, e.status::text AS enrollment,
               i.status::text AS instance
        FROM dispatches d
        JOIN enrollments e ON e.id = d.enrollment_id
        JOIN campaign_instances i ON i.id = d.instance_id
        WHERE d.id = ANY(CAST(:ids AS uuid[]))
        ORDER BY d.id
        FOR UPDATE OF d
    ), requeued AS (
        UPDATE dispatches d
        SET status = 'queued', next_attempt_at = now(), attempts = 0, uncertain = false
        FROM target t
        WHERE d.id = t.id AND t.status IN ('failed', 'unknown')
          AND t.instance IN ('active', 'paused') AND t.enrollment IN ('active', 'paused')
        RETURNING d.id
    )
    SELECT t.id, t.status, t.enrollment, t.instance, r.id IS NOT NULL AS requeued
    FROM target t LEFT JOIN requeued r ON r.id = t.id
    """
)


async def retry_dispatches(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Any]:
    """Queue failed or unknown touches for a new attempt now (attempts counted afresh; the
    operator has decided that sending again is right), when their enrollment still runs (a
    touch the provider refused for good failed its enrollment, which stays failed). Returns
    one row per found dispatch, saying whether it was requeued."""
    rows = list((await session.execute(_RETRY, {"ids": list(ids)})).all())
    if any(row.requeued for row in rows):
        await wake_senders(session)
    return rows


async def retry_dispatch(session: AsyncSession, dispatch_id: str) -> uuid.UUID:
    key = require_id("id", dispatch_id)
    rows = await retry_dispatches(session, [key])
    if not rows:
        raise DomainError(ErrorCode.NOT_FOUND, f"no dispatch with id {dispatch_id}", ("id",))
    row = rows[0]
    if row.requeued:
        return key
    if row.status not in (DispatchStatus.FAILED.value, DispatchStatus.UNKNOWN.value):
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"only a failed or unknown dispatch can be retried; this one is {row.status}",
            ("id",),
        )
    if row.instance not in (InstanceStatus.ACTIVE.value, InstanceStatus.PAUSED.value):
        raise DomainError(
            ErrorCode.INSTANCE_CLOSED, f"its instance is {row.instance}; nothing is sent", ("id",)
        )
    raise DomainError(
        ErrorCode.INVALID_TRANSITION,
        f"its enrollment is {row.enrollment}; nothing more is sent to it",
        ("id",),
    )


async def instance_dispatch_ids(
    session: AsyncSession, instance_id: str, statuses: Sequence[DispatchStatus]
) -> list[uuid.UUID]:
    key = require_id("instance_id", instance_id)
    rows = await session.execute(
        text(
            "SELECT id FROM dispatches WHERE instance_id = :i"
            " AND status::text = ANY(CAST(:statuses AS text[])) ORDER BY id"
        ),
        {"i": key, "statuses": [s.value for s in statuses]},
    )
    return [row[0] for row in rows]


async def sending_table(session: AsyncSession) -> list[Any]:
    """Every started instance with its sending figures, oldest first (for the CLI)."""
    rows = await session.execute(
        text(_figures("WHERE i.status <> 'draft' ORDER BY i.created_at, i.id"))
    )
    return list(rows.all())
