"""Templates and their steps: create, partial update, soft delete, with every rule of domain.md.

Inputs are dicts keyed by snake_case field names; an update holds only the fields the client
sent, with None meaning "clear".
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    POLICY_SETTING,
    CrossCampaignPolicy,
    ErrorCode,
    LinkedInAction,
    PathType,
)
from app.domain.errors import DomainError
from app.domain.limits import (
    AB_VARIANT_MAX,
    BODY_MAX,
    BODY_MIN,
    CONNECTION_NOTE_MAX,
    DELAY_HOURS_MAX,
    DESCRIPTION_MAX,
    JSON_MAX_BYTES,
    LINKEDIN_MESSAGE_MAX,
    NAME_MAX,
    STEP_NUMBER_MAX,
    SUBJECT_MAX,
)
from app.models import CampaignTemplate, EmailStep, LinkedInStep
from app.services.integrity import translate
from app.services.sending.render import MalformedPlaceholder, placeholders
from app.services.validation import Problems, not_null, require_id

StepModel = type[EmailStep] | type[LinkedInStep]


def _step_conflict(step_number: int | None = None) -> DomainError:
    which = f"step number {step_number}" if step_number is not None else "this step number"
    return DomainError(
        ErrorCode.STEP_CONFLICT,
        f"another active step of this template and channel already has {which}",
        ("step_number",),
    )


POLICY_VALUES = tuple(policy.value for policy in CrossCampaignPolicy)
_POLICY_SETTING_ERROR = DomainError(
    ErrorCode.INVALID,
    f"settings.{POLICY_SETTING} must be one of {', '.join(POLICY_VALUES)} (lowercase)",
    ("settings", POLICY_SETTING),
)


_CONSTRAINT_ERRORS = {
    "uq_email_steps_template_id_step_number_active": _step_conflict(),
    "uq_linkedin_steps_template_id_step_number_active": _step_conflict(),
    # PostgreSQL prints numbers such as 1e300 in full, so its measure can exceed ours.
    "ck_campaign_templates_settings_object": DomainError(
        ErrorCode.INVALID,
        f"settings is larger than {JSON_MAX_BYTES} bytes as stored (numbers are written out)",
        ("settings",),
    ),
    "ck_campaign_templates_cross_campaign_policy_known": _POLICY_SETTING_ERROR,
}


async def _flush(session: AsyncSession) -> None:
    """Flush, turning a constraint violation (e.g. a concurrent duplicate) into a domain error."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise translate(exc, _CONSTRAINT_ERRORS) from None


async def _locked_template(
    session: AsyncSession, template_id: uuid.UUID, field: str = "id"
) -> CampaignTemplate:
    template = await session.scalar(
        select(CampaignTemplate)
        .where(CampaignTemplate.id == template_id)
        .with_for_update(key_share=True)
    )
    if template is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no template with id {template_id}", (field,))
    return template


def _require_active(template: CampaignTemplate, field: str) -> None:
    if not template.is_active:
        raise DomainError(
            ErrorCode.TEMPLATE_INACTIVE, f"template {template.id} is archived", (field,)
        )


def _check_policy_setting(p: Problems, settings: dict[str, Any] | None) -> None:
    """``settings.cross_campaign_policy``, when present, is one of the lowercase policy values
    (the settings' own convention: snake_case keys, lowercase words)."""
    if not settings or POLICY_SETTING not in settings:
        return
    if settings[POLICY_SETTING] not in POLICY_VALUES:
        p.errors.append(_POLICY_SETTING_ERROR)


def _template_fields(p: Problems, values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = p.text(
            "name", values["name"], required=True, min_length=1, max_length=NAME_MAX
        )
    if "description" in values:
        clean["description"] = p.text(
            "description", values["description"], max_length=DESCRIPTION_MAX
        )
    if "icp_profile_id" in values:
        clean["icp_profile_id"] = p.uuid("icp_profile_id", values["icp_profile_id"])
    if "settings" in values:
        clean["settings"] = p.json_object("settings", values["settings"])
        _check_policy_setting(p, clean["settings"])
    for passthrough in ("type", "path_type"):
        if passthrough in values:
            clean[passthrough] = values[passthrough]
    return clean


async def create_template(
    session: AsyncSession, values: dict[str, Any], created_by: str
) -> uuid.UUID:
    p = Problems()
    given = {k: v for k, v in values.items() if v is not None or k != "settings"}
    clean = _template_fields(p, {"name": None, "settings": {}} | given)
    p.raise_if_any()
    template = CampaignTemplate(
        **(clean | {"path_type": clean.get("path_type") or PathType.STRUCTURED}),
        created_by=created_by,
    )
    session.add(template)
    await _flush(session)
    return template.id


async def update_template(
    session: AsyncSession, template_id: str, changes: dict[str, Any]
) -> uuid.UUID:
    template = await _locked_template(session, require_id("id", template_id))
    _require_active(template, "id")
    p = Problems()
    required = ("name", "path_type", "settings")
    not_null(p, changes, required)
    given = {
        k: v for k, v in changes.items() if k != "type" and (v is not None or k not in required)
    }
    clean = _template_fields(p, given)
    p.raise_if_any()
    for attribute, value in clean.items():
        setattr(template, attribute, value)
    await _flush(session)
    return template.id


async def archive_template(session: AsyncSession, template_id: str) -> uuid.UUID:
    """Soft delete; archiving an archived template is not an error."""
    template = await _locked_template(session, require_id("id", template_id))
    template.is_active = False
    await _flush(session)
    return template.id


def _personalizable(p: Problems, field: str, value: str | None) -> str | None:
    """``value`` when its placeholders are well formed: a broken one is refused now, with the
    field named, rather than at send time."""
    if value is not None:
        try:
            placeholders(value)
        except MalformedPlaceholder as exc:
            p.add(field, str(exc), ErrorCode.MALFORMED_PLACEHOLDER)
    return value


def _email_step_fields(p: Problems, values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "step_number" in values:
        clean["step_number"] = p.integer("step_number", values["step_number"], 1, STEP_NUMBER_MAX)
    if "subject" in values:
        clean["subject"] = _personalizable(
            p, "subject", p.text("subject", values["subject"], max_length=SUBJECT_MAX)
        )
    if "body" in values:
        clean["body"] = _personalizable(
            p,
            "body",
            p.text("body", values["body"], required=True, min_length=BODY_MIN, max_length=BODY_MAX),
        )
    if "delay_hours" in values:
        clean["delay_hours"] = p.integer("delay_hours", values["delay_hours"], 0, DELAY_HOURS_MAX)
    if "ab_variant" in values:
        clean["ab_variant"] = p.text("ab_variant", values["ab_variant"], max_length=AB_VARIANT_MAX)
    return clean


def _linkedin_step_fields(p: Problems, values: dict[str, Any]) -> dict[str, Any]:
    """A complete LinkedIn step: the message rules depend on the action."""
    action: LinkedInAction = values["action"]
    limit = (
        CONNECTION_NOTE_MAX if action is LinkedInAction.CONNECTION_REQUEST else LINKEDIN_MESSAGE_MAX
    )
    raw_message = values.get("message")
    blank = not (raw_message or "").strip()
    message = None
    if action is LinkedInAction.PROFILE_VISIT:
        if not blank:
            p.add("message", "must be empty for a 'profile_visit' step")
    elif action is LinkedInAction.MESSAGE and blank:
        p.add("message", "is required for a 'message' step")
    else:
        message = _personalizable(p, "message", p.text("message", raw_message, max_length=limit))
    return {
        "step_number": p.integer("step_number", values["step_number"], 1, STEP_NUMBER_MAX),
        "delay_hours": p.integer("delay_hours", values["delay_hours"], 0, DELAY_HOURS_MAX),
        "action": action,
        "message": message,
    }


async def _number_taken(
    session: AsyncSession,
    model: StepModel,
    template_id: uuid.UUID,
    step_number: int,
    except_id: uuid.UUID | None = None,
) -> bool:
    query = select(model.id).where(
        model.template_id == template_id,
        model.step_number == step_number,
        model.is_active.is_(True),
    )
    if except_id is not None:
        query = query.where(model.id != except_id)
    return await session.scalar(query.limit(1)) is not None


async def add_step(
    session: AsyncSession, model: StepModel, template_id: str, values: dict[str, Any]
) -> uuid.UUID:
    template = await _locked_template(
        session, require_id("template_id", template_id), "template_id"
    )
    _require_active(template, "template_id")
    p = Problems()
    # delayHours defaults to 0; an explicit null means the same.
    values = {"delay_hours": 0} | {
        k: v for k, v in values.items() if v is not None or k != "delay_hours"
    }
    if model is EmailStep:
        clean = _email_step_fields(p, values)
    else:
        clean = _linkedin_step_fields(p, values)
    p.raise_if_any()
    if await _number_taken(session, model, template.id, clean["step_number"]):
        raise _step_conflict(clean["step_number"])
    step = model(template_id=template.id, **clean)
    session.add(step)
    await _flush(session)
    return step.id


async def _locked_step(session: AsyncSession, model: StepModel, step_id: str) -> Any:
    """The step, locked, on an active template; a removed step counts as not found."""
    key = require_id("id", step_id)
    step = await session.scalar(
        select(model).where(model.id == key).with_for_update(key_share=True)
    )
    if step is None or not step.is_active:
        raise DomainError(ErrorCode.NOT_FOUND, f"no active step with id {step_id}", ("id",))
    _require_active(await _locked_template(session, step.template_id), "id")
    return step


async def update_step(
    session: AsyncSession, model: StepModel, step_id: str, changes: dict[str, Any]
) -> uuid.UUID:
    step = await _locked_step(session, model, step_id)
    p = Problems()
    not_null(p, changes, ("step_number", "body", "delay_hours", "action"))
    given = {k: v for k, v in changes.items() if v is not None or k in ("subject", "ab_variant")}
    if model is EmailStep:
        clean = _email_step_fields(p, given)
    else:
        current = {
            "step_number": step.step_number,
            "delay_hours": step.delay_hours,
            "action": step.action,
            "message": step.message,
        }
        clean = _linkedin_step_fields(p, current | given | _explicit_null(changes, "message"))
    p.raise_if_any()
    number = clean.get("step_number")
    if (
        number is not None
        and number != step.step_number
        and await _number_taken(session, model, step.template_id, number, step.id)
    ):
        raise _step_conflict(number)
    for attribute, value in clean.items():
        setattr(step, attribute, value)
    await _flush(session)
    return step.id


def _explicit_null(changes: dict[str, Any], field: str) -> dict[str, Any]:
    return {field: None} if field in changes and changes[field] is None else {}


async def remove_step(session: AsyncSession, model: StepModel, step_id: str) -> uuid.UUID:
    """Soft delete: the step number is freed, and history that names the step stays meaningful."""
    step = await _locked_step(session, model, step_id)
    step.is_active = False
    await _flush(session)
    return step.id
