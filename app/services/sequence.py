"""The one sequence an instance walks: the active steps of its template's channels, by number.

An email step and a LinkedIn step may share a number (two touches done together); a step's
delay is the smallest ``delay_hours`` among the steps with its number. ``next_step_sql`` says
which step comes next once, for ``step_after`` and for the statements that embed it (the
effects of ingested events), so they cannot drift apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Channel, LinkedInAction, TemplateType

EMAIL_TEMPLATES = (TemplateType.EMAIL, TemplateType.MULTI_CHANNEL)
LINKEDIN_TEMPLATES = (TemplateType.LINKEDIN, TemplateType.MULTI_CHANNEL)
"""The template types whose sequence walks email steps, and those that walk LinkedIn steps."""


def _types(types: tuple[TemplateType, ...]) -> str:
    return ", ".join(f"'{t.value}'" for t in types)


def next_step_sql(template_id: str, template_type: str, after: str) -> str:
    """SQL: the next active step after step ``after`` of a template, as one row
    (``step_number``, ``delay_hours``: the smallest delay among the steps of that number), or
    none when ``after`` was the last step.

    The arguments are SQL expressions (a bound parameter, or a column of an enclosing query
    when used in a LATERAL join) for the template's id, its type as text, and the step number
    (0: the first step). The subquery's own aliases are ``next_email``, ``next_linkedin`` and
    ``next_steps``; the expressions must not use them.
    """
    return f"""
        SELECT next_steps.step_number, min(next_steps.delay_hours) AS delay_hours
        FROM (
            SELECT next_email.step_number, next_email.delay_hours FROM email_steps next_email
            WHERE next_email.template_id = {template_id} AND next_email.is_active
              AND next_email.step_number > {after}
              AND {template_type} IN ({_types(EMAIL_TEMPLATES)})
            UNION ALL
            SELECT next_linkedin.step_number, next_linkedin.delay_hours
            FROM linkedin_steps next_linkedin
            WHERE next_linkedin.template_id = {template_id} AND next_linkedin.is_active
              AND next_linkedin.step_number > {after}
              AND {template_type} IN ({_types(LINKEDIN_TEMPLATES)})
        ) next_steps
        GROUP BY next_steps.step_number
        ORDER BY next_steps.step_number
        LIMIT 1
    """


_STEP_AFTER = next_step_sql(":template_id", "CAST(:template_type AS text)", ":after")


@dataclass(frozen=True, slots=True)
class NextStep:
    step_number: int
    delay_hours: int


def uses_email(template_type: TemplateType) -> bool:
    return template_type in EMAIL_TEMPLATES


def uses_linkedin(template_type: TemplateType) -> bool:
    return template_type in LINKEDIN_TEMPLATES


async def step_after(
    session: AsyncSession, template_id: uuid.UUID, template_type: TemplateType, after: int = 0
) -> NextStep | None:
    """The step following step ``after`` (0: the first step), or None when it was the last."""
    row = (
        await session.execute(
            text(_STEP_AFTER),
            {"template_id": template_id, "template_type": template_type.value, "after": after},
        )
    ).first()
    return NextStep(row.step_number, row.delay_hours) if row else None


def used_channels(template_type: TemplateType) -> tuple[Channel, ...]:
    """The channels an instance of this template type sends on."""
    return tuple(
        channel
        for channel, used in (
            (Channel.EMAIL, uses_email(template_type)),
            (Channel.LINKEDIN, uses_linkedin(template_type)),
        )
        if used
    )


async def used_actions(
    session: AsyncSession, template_id: uuid.UUID, template_type: TemplateType
) -> set[LinkedInAction]:
    """The LinkedIn actions the template's active steps take (each needs its agent)."""
    if not uses_linkedin(template_type):
        return set()
    rows = await session.execute(
        text(
            "SELECT DISTINCT action::text FROM linkedin_steps WHERE template_id = :t AND is_active"
        ),
        {"t": template_id},
    )
    return {LinkedInAction(row[0]) for row in rows}
