"""Recording what became of claimed touches, a batch per transaction: the dispatch rows move
on, and a sent touch's send event goes through the same ingestion (and effects) as a
webhook's, so ``current_step``, ``next_action_at``, completion and counters follow.

Every update is guarded by the lease (``claimed_by = <this sender>``, which a CHECK ties to
``status = 'sending'``): a sender that lost its claim (it froze past the lease and another
took over) records nothing, so a touch is never recorded twice. The guard names no status on
purpose: ``status = 'sending'`` matched the partial lease index, and the planner read the
whole index (every claim's dead entries included) instead of the 500 rows by primary key,
which grew to the costliest statement of a busy sender.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.db.driver import DriverConnection
from app.domain.enums import Channel, DispatchStatus, EventType, LinkedInAction
from app.domain.limits import ERROR_CODE_MAX, ERROR_MESSAGE_MAX
from app.services.ingestion.events import NewEvent, ingest
from app.services.sending.claims import Claimed

ERASED_ERROR = "[erased]"
"""A provider's error about an erased contact's touch (it may quote the recipient) is kept as
this, as the erasure left the others."""

SEND_EVENT: dict[LinkedInAction | None, EventType] = {
    None: EventType.SENT,
    LinkedInAction.PROFILE_VISIT: EventType.PROFILE_VISITED,
    LinkedInAction.CONNECTION_REQUEST: EventType.CONNECTION_REQUESTED,
    LinkedInAction.MESSAGE: EventType.MESSAGE_SENT,
    LinkedInAction.VOICE_MESSAGE: EventType.VOICE_MESSAGE_SENT,
}
"""The send event of a touch: ``sent`` for e-mail, the action's event for LinkedIn."""


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Result:
    touch: Claimed
    verdict: Verdict
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None
    uncertain: bool = False
    """For a retry: the attempt may have reached the provider (ask before sending again)."""
    dry_run: bool = False
    records_event: bool = True
    """False for a lemlist lead push: lemlist reports the sends itself."""


@dataclass(frozen=True, slots=True)
class Timing:
    base_s: float
    max_s: float
    max_attempts: int


def backoff(attempts: int, timing: Timing, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter after ``attempts`` attempts: half the doubled delay
    fixed, half random (so a crowd of touches refused together does not come back together),
    never sooner than the provider's ``Retry-After``."""
    ceiling = min(timing.max_s, timing.base_s * 2 ** max(attempts - 1, 0))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


_UPDATE = """
    WITH u AS (
        SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::float8[], $8::bool[], $9::bool[])
             AS u(id, status, message_id, error_code, error, delay_s, uncertain, dry_run)
    )
    UPDATE dispatches d SET
        status = u.status::dispatch_status,
        provider_message_id = coalesce(u.message_id, d.provider_message_id),
        sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE d.sent_at END,
        next_attempt_at = CASE WHEN u.status = 'queued'
                               THEN now() + make_interval(secs => u.delay_s) END,
        attempts = CASE WHEN u.error_code = 'RELEASED' THEN greatest(d.attempts - 1, 0)
                        ELSE d.attempts END,
        claimed_by = NULL,
        claimed_until = NULL,
        last_error = CASE WHEN u.error_code = 'RELEASED' THEN d.last_error
                          WHEN u.error IS NULL THEN NULL
                          WHEN EXISTS (SELECT 1 FROM enrollments e
                                       WHERE e.id = d.enrollment_id AND e.erased_at IS NOT NULL)
                          THEN $10 ELSE u.error END,
        last_error_code = CASE WHEN u.error_code = 'RELEASED' THEN d.last_error_code
                               ELSE u.error_code END,
        uncertain = u.uncertain,
        dry_run = u.dry_run
    FROM u
    WHERE d.id = u.id AND d.claimed_by = $1
    RETURNING d.id, extract(epoch FROM clock_timestamp() - d.due_at)::float8 AS lag_s
"""

_FAIL_ENROLLMENTS = """
    UPDATE enrollments SET status = 'failed', next_action_at = NULL
    WHERE id = ANY($1::uuid[]) AND status IN ('enrolled', 'active', 'paused')
"""
"""A touch the provider refused for good stops its enrollment (it cannot progress)."""

_HOLD_ENROLLMENTS = """
    UPDATE enrollments SET next_action_at = NULL
    WHERE id = ANY($1::uuid[]) AND next_action_at IS NOT NULL
"""
"""A touch that gave up or ended unknown holds its enrollment where it is (out of the due
index) until an operator sends it again (``retryDispatch``)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    result: Result
    lag_s: float


def _row(result: Result, timing: Timing) -> tuple[object, ...]:
    verdict, touch = result.verdict, result.touch
    status: DispatchStatus
    delay = 0.0
    code, error = result.error_code, result.error
    if verdict is Verdict.SENT:
        status, code, error = DispatchStatus.SENT, None, None
    elif verdict is Verdict.RELEASED:
        status, code = DispatchStatus.QUEUED, "RELEASED"
    elif verdict is Verdict.RETRY and touch.attempts < timing.max_attempts:
        status = DispatchStatus.QUEUED
        delay = backoff(touch.attempts, timing, result.retry_after)
    elif verdict is Verdict.RETRY:
        status = DispatchStatus.FAILED
        error = f"gave up after {touch.attempts} attempts: {error or code}"
    else:
        status = DispatchStatus(verdict.value)
    return (
        touch.dispatch_id,
        status.value,
        result.message_id,
        code[:ERROR_CODE_MAX] if code else None,
        (error or code or verdict.value)[:ERROR_MESSAGE_MAX]
        if status is not DispatchStatus.SENT
        else None,
        delay,
        result.uncertain and status is DispatchStatus.QUEUED,
        result.dry_run,
    )


def _send_event(result: Result) -> NewEvent:
    touch = result.touch
    metadata: dict[str, object] = {"dispatch_id": str(touch.dispatch_id), "attempt": touch.attempts}
    if result.dry_run:
        metadata["dry_run"] = True
    return NewEvent(
        enrollment_ref=str(touch.enrollment_id),
        event_type=SEND_EVENT[touch.action if touch.channel is Channel.LINKEDIN else None],
        provider=touch.provider,
        channel=touch.channel,
        provider_event_id=result.message_id,
        step_number=touch.step_number,
        metadata_json=json.dumps(metadata),
    )


def _failed_event(result: Result) -> NewEvent:
    touch = result.touch
    metadata = {
        "dispatch_id": str(touch.dispatch_id),
        "code": result.error_code,
        "message": (result.error or "")[:ERROR_MESSAGE_MAX],
    }
    return NewEvent(
        enrollment_ref=str(touch.enrollment_id),
        event_type=EventType.FAILED,
        provider=touch.provider,
        channel=touch.channel,
        provider_event_id=f"{touch.dispatch_id}:failed",
        step_number=touch.step_number,
        metadata_json=json.dumps(metadata),
    )


async def record(
    db: DriverConnection, sender_id: str, results: Sequence[Result], timing: Timing
) -> list[Recorded]:
    """Store ``results`` in the transaction ``db`` is in; returns those this sender still
    held (the others were taken over and are not its to record)."""
    if not results:
        return []
    rows = [_row(r, timing) for r in results]
    updated = await db.fetch(_UPDATE, sender_id, *zip(*rows, strict=True), ERASED_ERROR)
    lag_by_id: dict[uuid.UUID, float] = {row["id"]: row["lag_s"] for row in updated}
    held = {
        result.touch.enrollment_id
        for result, row in zip(results, rows, strict=True)
        if row[1] in (DispatchStatus.FAILED.value, DispatchStatus.UNKNOWN.value)
        and result.verdict is not Verdict.FAILED
        and result.touch.dispatch_id in lag_by_id
    }
    kept = [r for r in results if r.touch.dispatch_id in lag_by_id]
    events = [_send_event(r) for r in kept if r.verdict is Verdict.SENT and r.records_event]
    refused = [r for r in kept if r.verdict is Verdict.FAILED]
    events.extend(_failed_event(r) for r in refused)
    await ingest(db, events)
    if refused:
        await db.execute(_FAIL_ENROLLMENTS, sorted({r.touch.enrollment_id for r in refused}))
    if held:
        await db.execute(_HOLD_ENROLLMENTS, sorted(held))
    return [Recorded(r, lag_by_id[r.touch.dispatch_id]) for r in kept]
