"""Campaigns ready to send, built through the services as a client's requests would build
them: a template with steps, an instance with a complete sending config, enrolled contacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import LinkedInAction, TemplateType
from app.models import EmailStep, LinkedInStep
from app.services import enrollment, lifecycle, templates
from app.services.enrollment import ContactInput

AGENTS = {
    "profile_visit": "agent-visit",
    "connection_request": "agent-connect",
    "message": "agent-message",
    "voice_message": "agent-voice",
}
SENDING_CONFIG: dict[str, Any] = {
    "from_email": "team@example.com",
    "from_name": "The Team",
    "phantombuster_agents": AGENTS,
}


@dataclass(frozen=True, slots=True)
class Campaign:
    template_id: str
    instance_id: str
    enrollment_ids: list[str]


def contact(n: int, **extra: Any) -> ContactInput:
    return ContactInput(
        contact_id=f"crm-{n}",
        metadata={
            "email": f"person{n}@example.com",
            "linkedin_url": f"https://www.linkedin.com/in/person-{n}",
            "first_name": f"Ada{n}",
            "company": f"Company {n}",
        }
        | extra,
    )


def email_steps_of(count: int) -> list[dict[str, Any]]:
    return [
        {
            "step_number": n,
            "subject": f"Step {n} for {{{{first_name}}}}",
            "body": f"Hello {{{{first_name}}}} at {{{{company|your company}}}}, step {n}.",
            "delay_hours": 0,
        }
        for n in range(1, count + 1)
    ]


def email_only(steps: int) -> dict[str, Any]:
    """``build_campaign`` arguments: an e-mail template of ``steps`` steps, no delays."""
    return {"template_type": "email", "email_steps": email_steps_of(steps)}


def linkedin_only(action: str = "connection_request") -> dict[str, Any]:
    """``build_campaign`` arguments: a LinkedIn template of one step."""
    return {
        "template_type": "linkedin",
        "linkedin_steps": [
            {"step_number": 1, "action": action, "message": "Hi {{first_name}}", "delay_hours": 0}
        ],
    }


async def build_campaign(
    sessionmaker: async_sessionmaker[AsyncSession],
    contacts: int,
    *,
    template_type: str = "multi_channel",
    email_steps: list[dict[str, Any]] | None = None,
    linkedin_steps: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    start: bool = True,
) -> Campaign:
    """A template with steps, an instance of it, ``contacts`` enrollments; started."""
    if email_steps is None and template_type in ("email", "multi_channel"):
        email_steps = email_steps_of(3)
    if linkedin_steps is None and template_type in ("linkedin", "multi_channel"):
        linkedin_steps = [
            {"step_number": 1, "action": "profile_visit", "delay_hours": 0},
            {
                "step_number": 3,
                "action": "message",
                "message": "Hi {{first_name}}!",
                "delay_hours": 0,
            },
        ]
    async with sessionmaker.begin() as session:
        template_id = await templates.create_template(
            session, {"name": "Sender test", "type": TemplateType(template_type)}, "tests"
        )
    for step in email_steps or []:
        async with sessionmaker.begin() as session:
            await templates.add_step(session, EmailStep, str(template_id), step)
    for step in linkedin_steps or []:
        async with sessionmaker.begin() as session:
            await templates.add_step(
                session,
                LinkedInStep,
                str(template_id),
                step | {"action": LinkedInAction(step["action"])},
            )
    async with sessionmaker.begin() as session:
        instance_id = await lifecycle.create_instance(
            session,
            {
                "template_id": str(template_id),
                "name": "Sender run",
                "provider_config": config or SENDING_CONFIG,
            },
            "tests",
        )
    ids: list[str] = []
    for start_at in range(0, contacts, 10_000):
        batch = [contact(n) for n in range(start_at, min(contacts, start_at + 10_000))]
        async with sessionmaker.begin() as session:
            result = await enrollment.bulk_enroll(session, str(instance_id), batch)
        assert not result.skipped, result.skipped[:3]
        ids.extend(str(i) for i in result.enrolled_ids)
    if start:
        async with sessionmaker.begin() as session:
            await lifecycle.transition(session, str(instance_id), "start", "tests")
    return Campaign(str(template_id), str(instance_id), ids)
