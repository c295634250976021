"""A claimed touch made ready to leave: its address checked and its step rendered for the
contact, or the reason it cannot leave, as a result to record instead."""

from __future__ import annotations

from app.domain.addresses import METADATA_KEY
from app.domain.addresses import problem as address_problem
from app.providers.outbound import Sender, Touch
from app.services.sending.claims import Claimed
from app.services.sending.config import SendingConfig
from app.services.sending.record import Result, Verdict
from app.services.sending.render import MalformedPlaceholder, MissingVariable, render
from app.services.sending.schedule import Plan


def prepare(current: Plan, claimed: Claimed) -> Touch | Result:
    """The rendered touch, or why it cannot leave (a result to record instead)."""
    cfg = current.configs.get(claimed.instance_id)
    if not claimed.step_found:
        return Result(
            claimed,
            Verdict.CANCELLED,
            error_code="STEP_REMOVED",
            error="the step is no longer active",
        )
    if cfg is None and claimed.sendable:
        return Result(
            claimed,
            Verdict.RETRY,
            error_code="NOT_SENDING_NOW",
            error="the instance cannot send now",
        )
    key = METADATA_KEY[claimed.channel]
    address = claimed.metadata.get(key)
    problem = address_problem(claimed.channel, address)
    if problem is not None:
        return Result(
            claimed,
            Verdict.FAILED,
            error_code="ADDRESS_INVALID",
            error=f"metadata.{key} is {problem}",
        )
    try:
        subject = render(claimed.subject, claimed.metadata) if claimed.subject else None
        body = render(claimed.body, claimed.metadata)
    except MissingVariable as exc:
        return Result(claimed, Verdict.FAILED, error_code="VARIABLE_MISSING", error=str(exc))
    except MalformedPlaceholder as exc:
        return Result(claimed, Verdict.FAILED, error_code="MALFORMED_PLACEHOLDER", error=str(exc))
    return Touch(
        dispatch_id=claimed.dispatch_id,
        enrollment_id=claimed.enrollment_id,
        instance_id=claimed.instance_id,
        contact_id=claimed.contact_id,
        channel=claimed.channel,
        step_number=claimed.step_number,
        address=str(address).strip(),
        body=body,
        subject=subject,
        action=claimed.action,
        sender=_sender(cfg),
        variables=claimed.metadata,
    )


def _sender(cfg: SendingConfig | None) -> Sender:
    if cfg is None:
        return Sender()
    return Sender(
        from_email=cfg.from_email,
        from_name=cfg.from_name,
        message_stream=cfg.message_stream,
        agents=cfg.agents,
        lemlist_campaign_id=cfg.lemlist_campaign_id,
    )
