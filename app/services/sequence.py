"""The one sequence an instance walks: the active steps of its template's channels, by number.

An email step and a LinkedIn step may share a number (two touches done together); a step's
delay is the smallest ``delay_hours`` among the steps with its number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Channel, LinkedInAction, TemplateType

_STEPS = """
    SELECT step_number, min(delay_hours) AS delay_hours FROM (
        SELECT step_number, delay_hours FROM email_steps
        WHERE template_id = :template_id AND is_active AND :uses_email
        UNION ALL
        SELECT step_number, delay_hours FROM linkedin_steps
        WHERE template_id = :template_id AND is_active AND :uses_linkedin
    ) steps
    WHERE step_number > :after
    GROUP BY step_number ORDER BY step_number LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class NextStep:
    step_number: int
    delay_hours: int


def uses_email(template_type: TemplateType) -> bool:
    return template_type in (TemplateType.EMAIL, TemplateType.MULTI_CHANNEL)


def uses_linkedin(template_type: TemplateType) -> bool:
    return template_type in (TemplateType.LINKEDIN, TemplateType.MULTI_CHANNEL)


async def step_after(
    session: AsyncSession, template_id: uuid.UUID, template_type: TemplateType, after: int = 0
) -> NextStep | None:
    """The step following step ``after`` (0: the first step), or None when it was the last."""
    row = (
        await session.execute(
            text(_STEPS),
            {
                "template_id": template_id,
                "uses_email": uses_email(template_type),
                "uses_linkedin": uses_linkedin(template_type),
                "after": after,
            },
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
