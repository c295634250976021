"""The instance status machine, in one table: which transitions exist, from where, on what
condition, with which effects. Every transition locks the instance row, checks the rule against
the locked row, applies its effects and appends an audit row, in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import ErrorCode, InstanceStatus, TemplateType
from app.domain.errors import DomainError
from app.domain.limits import FAILURE_REASON_MAX, NAME_MAX
from app.models import CampaignInstance, CampaignTemplate, InstanceTransition
from app.services.sending import config as sending_config
from app.services.sending.config import PROVIDER_KEY, ConfigProblem, missing_for_start
from app.services.sending.wake import wake_senders
from app.services.sequence import step_after, used_actions, used_channels
from app.services.validation import Problems, require_id

DRAFT, ACTIVE, PAUSED = InstanceStatus.DRAFT, InstanceStatus.ACTIVE, InstanceStatus.PAUSED
COMPLETED, FAILED = InstanceStatus.COMPLETED, InstanceStatus.FAILED

_NON_TERMINAL = "('enrolled', 'active', 'paused')"

Precondition = Callable[
    [AsyncSession, CampaignTemplate, CampaignInstance], Awaitable[dict[str, Any]]
]


async def _startable(
    session: AsyncSession, template: CampaignTemplate, instance: CampaignInstance
) -> dict[str, Any]:
    """An active template with at least one active step, and a provider_config that gives
    each used channel's provider what it needs; yields the first step's delay."""
    if not template.is_active:
        raise DomainError(
            ErrorCode.TEMPLATE_INACTIVE, f"template {template.id} is archived", ("id",)
        )
    first = await step_after(session, template.id, template.type)
    if first is None:
        raise DomainError(
            ErrorCode.TEMPLATE_EMPTY,
            f"template {template.id} has no active step on the channels of a"
            f" campaign of type {template.type.value}",
            ("id",),
        )
    try:
        config = sending_config.parse(instance.provider_config)
    except ConfigProblem as exc:  # stored before createInstance checked the sending keys
        raise DomainError(
            ErrorCode.PROVIDER_CONFIG_INCOMPLETE, f"provider_config: {exc}", ("id",)
        ) from exc
    missing = missing_for_start(
        config,
        used_channels(template.type),
        await used_actions(session, template.id, template.type),
    )
    if missing:
        raise DomainError(
            ErrorCode.PROVIDER_CONFIG_INCOMPLETE,
            "provider_config lacks " + "; ".join(missing),
            ("id",),
        )
    return {"first_delay": first.delay_hours}


async def _always(
    session: AsyncSession, template: CampaignTemplate, instance: CampaignInstance
) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the status machine. ``instance_sets`` and ``enrollment_sets`` are SET clauses
    applied by one UPDATE each; enrollments are those whose status is in ``enrollments_from``."""

    sources: frozenset[InstanceStatus]
    target: InstanceStatus
    instance_sets: str
    enrollment_sets: str | None = None
    enrollments_from: str = _NON_TERMINAL
    precondition: Precondition = _always
    needs_reason: bool = False
    wakes_senders: bool = False


TRANSITIONS: dict[str, Transition] = {
    "start": Transition(
        frozenset({DRAFT}),
        ACTIVE,
        "started_at = now()",
        "status = 'active', next_action_at = now() + make_interval(hours => :first_delay)",
        enrollments_from="('enrolled')",
        precondition=_startable,
        wakes_senders=True,
    ),
    "pause": Transition(frozenset({ACTIVE}), PAUSED, "paused_at = now()"),
    "resume": Transition(frozenset({PAUSED}), ACTIVE, "paused_at = NULL", wakes_senders=True),
    "complete": Transition(
        frozenset({ACTIVE, PAUSED}),
        COMPLETED,
        "completed_at = now()",
        "status = 'completed', completed_at = now(), next_action_at = NULL",
    ),
    "fail": Transition(
        frozenset({DRAFT, ACTIVE, PAUSED}),
        FAILED,
        "failure_reason = :reason",
        "status = 'failed', next_action_at = NULL",
        needs_reason=True,
    ),
}


async def transition(
    session: AsyncSession,
    instance_id: str,
    name: str,
    actor: str,
    reason: str | None = None,
) -> uuid.UUID:
    """Apply transition ``name`` to the instance, or raise and change nothing."""
    rule = TRANSITIONS[name]
    if rule.needs_reason:
        p = Problems()
        reason = p.text(
            "reason", reason, required=True, min_length=1, max_length=FAILURE_REASON_MAX
        )
        p.raise_if_any()
    key = require_id("id", instance_id)
    instance = await session.scalar(
        # NO KEY UPDATE: serialises with other transitions and enrollers, not with the
        # foreign-key checks of events being ingested for this instance.
        select(CampaignInstance).where(CampaignInstance.id == key).with_for_update(key_share=True)
    )
    if instance is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no instance with id {instance_id}", ("id",))
    if instance.status not in rule.sources:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"cannot {name} an instance that is {instance.status.value}",
            ("id",),
        )
    template = await session.get_one(CampaignTemplate, instance.template_id)
    params = {"id": instance.id, "reason": reason} | await rule.precondition(
        session, template, instance
    )
    if rule.enrollment_sets:
        await session.execute(
            text(
                f"UPDATE enrollments SET {rule.enrollment_sets}"
                f" WHERE instance_id = :id AND status IN {rule.enrollments_from}"
            ),
            params,
        )
    await session.execute(
        text(
            f"UPDATE campaign_instances SET status = '{rule.target.value}', {rule.instance_sets}"
            " WHERE id = :id"
        ),
        params,
    )
    session.add(
        InstanceTransition(
            instance_id=instance.id,
            from_status=instance.status,
            to_status=rule.target,
            actor=actor,
            reason=reason,
        )
    )
    if rule.wakes_senders:
        await wake_senders(session)
    await session.flush()
    return instance.id


def _check_provider_config(
    p: Problems, config: dict[str, Any], template_type: TemplateType
) -> None:
    """The sending settings must be well formed, and name no provider for a channel the
    template does not use; completeness is checked when the instance starts."""
    for channel, key in PROVIDER_KEY.items():
        if key in config and channel not in used_channels(template_type):
            p.add(
                "provider_config",
                f"has {key} but a campaign of type {template_type.value} has no such channel",
            )
    try:
        sending_config.parse(config)
    except ConfigProblem as exc:
        p.add("provider_config", str(exc))


async def create_instance(session: AsyncSession, values: dict[str, Any], actor: str) -> uuid.UUID:
    """A draft instance of an active template, with its first audit row (null → draft)."""
    p = Problems()
    template_id = p.uuid("template_id", values.get("template_id"))
    name = p.text("name", values.get("name"), required=True, min_length=1, max_length=NAME_MAX)
    raw_config = values.get("provider_config")
    config = p.json_object("provider_config", {} if raw_config is None else raw_config)
    p.raise_if_any()
    template = await session.scalar(
        select(CampaignTemplate)
        .where(CampaignTemplate.id == template_id)
        .with_for_update(read=True)
    )
    if template is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no template with id {template_id}", ("template_id",)
        )
    if not template.is_active:
        raise DomainError(
            ErrorCode.TEMPLATE_INACTIVE, f"template {template.id} is archived", ("template_id",)
        )
    _check_provider_config(p, config or {}, template.type)
    p.raise_if_any()
    instance = CampaignInstance(template_id=template.id, name=name, provider_config=config)
    session.add(instance)
    await session.flush()
    session.add(
        InstanceTransition(instance_id=instance.id, from_status=None, to_status=DRAFT, actor=actor)
    )
    await session.flush()
    return instance.id
