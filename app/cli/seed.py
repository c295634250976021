"""Demo data for a fresh installation: idempotent, because every row has a fixed id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    Channel,
    EnrollmentStatus,
    EventType,
    InstanceStatus,
    LinkedInAction,
    PathType,
    Provider,
    TemplateType,
)
from app.models import (
    CampaignEvent,
    CampaignInstance,
    CampaignTemplate,
    EmailStep,
    Enrollment,
    InstanceTransition,
    LinkedInStep,
)
from app.models.base import Base
from app.services.ingestion.counters import rebuild_counters, rebuild_outcomes

_NAMESPACE = uuid.UUID("6f1c3a52-4d0e-4b8e-9a57-2f9c1d7e8b10")
SEED_ACTOR = "seed"


def seed_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


def _templates() -> list[dict[str, Any]]:
    return [
        dict(
            id=seed_id("template:tech"),
            name="Tech Company Outreach",
            description="Three-touch cold email sequence for engineering leaders.",
            type=TemplateType.EMAIL,
            path_type=PathType.STRUCTURED,
            settings={
                "timezone": "Europe/Paris",
                "send_window": {"start": "09:00", "end": "17:00"},
            },
        ),
        dict(
            id=seed_id("template:founders"),
            name="Founder Multi-Touch",
            description="LinkedIn warm-up, then email, for seed-stage founders.",
            type=TemplateType.MULTI_CHANNEL,
            path_type=PathType.STRUCTURED,
            settings={"timezone": "America/New_York"},
        ),
        dict(
            id=seed_id("template:linkedin"),
            name="LinkedIn Warm Intro",
            description="Visit, connect, then a voice note.",
            type=TemplateType.LINKEDIN,
            path_type=PathType.STRUCTURED,
            settings={},
        ),
        dict(
            id=seed_id("template:ai"),
            name="AI Adaptive Nurture",
            description="Steps chosen at run time; the stored step is the fallback path.",
            type=TemplateType.EMAIL,
            path_type=PathType.DYNAMIC_AI,
            settings={"model": "nurture-v1"},
            is_active=False,
        ),
    ]


def _email_steps() -> list[dict[str, Any]]:
    tech, founders, ai = (seed_id(f"template:{n}") for n in ("tech", "founders", "ai"))
    rows = [
        (tech, 1, "Quick question, {{first_name}}", 0, "A"),
        (tech, 2, None, 72, None),
        (tech, 3, "Closing the loop", 120, None),
        (founders, 1, "{{company}} and outbound", 0, None),
        (ai, 1, "An idea for {{company}}", 0, None),
    ]
    return [
        dict(
            id=seed_id(f"email:{template}:{number}"),
            template_id=template,
            step_number=number,
            subject=subject,
            body=f"Hi {{{{first_name}}}}, step {number}: a short note about {{{{company}}}}.",
            delay_hours=delay,
            ab_variant=variant,
        )
        for template, number, subject, delay, variant in rows
    ]


def _linkedin_steps() -> list[dict[str, Any]]:
    founders, warm = seed_id("template:founders"), seed_id("template:linkedin")
    rows = [
        (founders, 1, LinkedInAction.PROFILE_VISIT, None, 0),
        (
            founders,
            2,
            LinkedInAction.CONNECTION_REQUEST,
            "Fellow founder here, glad to connect.",
            24,
        ),
        (founders, 3, LinkedInAction.MESSAGE, "Thanks for connecting, {{first_name}}!", 72),
        (warm, 1, LinkedInAction.PROFILE_VISIT, None, 0),
        (warm, 2, LinkedInAction.CONNECTION_REQUEST, None, 24),
        (warm, 3, LinkedInAction.VOICE_MESSAGE, "Voice note script: intro and ask.", 48),
    ]
    return [
        dict(
            id=seed_id(f"linkedin:{template}:{number}"),
            template_id=template,
            step_number=number,
            action=action,
            message=message,
            delay_hours=delay,
        )
        for template, number, action, message, delay in rows
    ]


def _instances(now: datetime) -> list[dict[str, Any]]:
    return [
        dict(
            id=seed_id("instance:tech-q4"),
            template_id=seed_id("template:tech"),
            name="Tech Outreach Q4",
            status=InstanceStatus.ACTIVE,
            provider_config={"email_provider": "postmark", "from_email": "outreach@acme.example"},
            started_at=now - timedelta(days=6),
        ),
        dict(
            id=seed_id("instance:founders-nov"),
            template_id=seed_id("template:founders"),
            name="Founders November",
            status=InstanceStatus.PAUSED,
            provider_config={
                "email_provider": "lemlist",
                "linkedin_provider": "phantombuster",
                "lemlist_campaign_id": "cam_founders_nov",
                "phantombuster_agents": {
                    "profile_visit": "4101",
                    "connection_request": "4102",
                    "message": "4103",
                },
            },
            started_at=now - timedelta(days=5),
            paused_at=now - timedelta(days=1),
        ),
        dict(
            id=seed_id("instance:warm-draft"),
            template_id=seed_id("template:linkedin"),
            name="Warm Intro (draft)",
            status=InstanceStatus.DRAFT,
            provider_config={
                "linkedin_provider": "phantombuster",
                "phantombuster_agents": {
                    "profile_visit": "4101",
                    "connection_request": "4102",
                    "voice_message": "4104",
                },
            },
        ),
    ]


def _transitions(now: datetime) -> list[dict[str, Any]]:
    draft, active, paused = InstanceStatus.DRAFT, InstanceStatus.ACTIVE, InstanceStatus.PAUSED
    rows = [
        ("tech-q4", None, draft, 7),
        ("tech-q4", draft, active, 6),
        ("founders-nov", None, draft, 6),
        ("founders-nov", draft, active, 5),
        ("founders-nov", active, paused, 1),
        ("warm-draft", None, draft, 2),
    ]
    return [
        dict(
            id=seed_id(f"transition:{instance}:{to_status}"),
            instance_id=seed_id(f"instance:{instance}"),
            from_status=from_status,
            to_status=to_status,
            actor=SEED_ACTOR,
            at=now - timedelta(days=days_ago),
        )
        for instance, from_status, to_status, days_ago in rows
    ]


def _enrollments(now: datetime) -> list[dict[str, Any]]:
    return [
        dict(
            id=seed_id("enrollment:ada"),
            instance_id=seed_id("instance:tech-q4"),
            contact_id="hubspot-1001",
            status=EnrollmentStatus.REPLIED,
            current_step=2,
            metadata_={
                "first_name": "Ada",
                "company": "Analytical Engines",
                "email": "ada@analytical-engines.example",
            },
            enrolled_at=now - timedelta(days=6),
        ),
        dict(
            id=seed_id("enrollment:grace"),
            instance_id=seed_id("instance:tech-q4"),
            contact_id="hubspot-1002",
            status=EnrollmentStatus.ACTIVE,
            current_step=1,
            next_action_at=now - timedelta(days=5) + timedelta(hours=72),
            metadata_={
                "first_name": "Grace",
                "company": "Compilers Inc",
                "email": "grace@compilers.example",
            },
            enrolled_at=now - timedelta(days=6),
        ),
        dict(
            id=seed_id("enrollment:linus"),
            instance_id=seed_id("instance:founders-nov"),
            contact_id="003Qx00000AbCdEfGh",
            status=EnrollmentStatus.ACTIVE,
            current_step=2,
            next_action_at=now - timedelta(days=2) + timedelta(hours=72),
            metadata_={
                "first_name": "Linus",
                "company": "Kernel Labs",
                "email": "linus@kernel-labs.example",
                "linkedin_url": "https://www.linkedin.com/in/linus-kernel-labs",
            },
            enrolled_at=now - timedelta(days=5),
        ),
    ]


def _events(now: datetime) -> list[dict[str, Any]]:
    email, linkedin = Channel.EMAIL, Channel.LINKEDIN
    api, postmark = Provider.API, Provider.POSTMARK
    lemlist, phantom = Provider.LEMLIST, Provider.PHANTOMBUSTER
    rows = [
        ("ada", EventType.SENT, email, api, 1, 5.9, {}),
        ("ada", EventType.DELIVERED, email, postmark, 1, 5.9, {}),
        ("ada", EventType.OPENED, email, postmark, 1, 5.5, {"client": "Gmail"}),
        ("ada", EventType.OPENED, email, postmark, 1, 5.0, {"client": "Gmail"}),
        ("ada", EventType.CLICKED, email, postmark, 1, 5.0, {"link": "https://example.com/demo"}),
        ("ada", EventType.SENT, email, api, 2, 2.9, {}),
        ("ada", EventType.DELIVERED, email, postmark, 2, 2.9, {}),
        ("ada", EventType.REPLIED, email, api, 2, 2.0, {}),
        ("grace", EventType.SENT, email, api, 1, 5.0, {}),
        ("grace", EventType.DELIVERED, email, postmark, 1, 5.0, {}),
        ("grace", EventType.OPENED, email, postmark, 1, 4.0, {"client": "Apple Mail"}),
        ("linus", EventType.PROFILE_VISITED, linkedin, phantom, 1, 4.9, {}),
        ("linus", EventType.SENT, email, lemlist, 1, 4.8, {}),
        ("linus", EventType.OPENED, email, lemlist, 1, 4.0, {}),
        ("linus", EventType.CONNECTION_REQUESTED, linkedin, phantom, 2, 2.0, {}),
        ("linus", EventType.CONNECTION_ACCEPTED, linkedin, lemlist, 2, 1.5, {}),
    ]
    instance_of = {"ada": "tech-q4", "grace": "tech-q4", "linus": "founders-nov"}
    return [
        dict(
            id=seed_id(f"event:{n}"),
            enrollment_id=seed_id(f"enrollment:{who}"),
            instance_id=seed_id(f"instance:{instance_of[who]}"),
            event_type=event_type,
            channel=channel,
            provider=provider,
            provider_event_id=f"seed-{n}",
            step_number=step,
            occurred_at=now - timedelta(days=days_ago),
            metadata_=metadata,
        )
        for n, (who, event_type, channel, provider, step, days_ago, metadata) in enumerate(rows)
    ]


async def _insert(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> int:
    statement = insert(model).on_conflict_do_nothing(index_elements=["id"]).returning(model.id)
    return len((await session.execute(statement, rows)).all())


async def seed(session: AsyncSession) -> bool:
    """Insert the demo data where it is missing; True when anything was added."""
    now = datetime.now(UTC).replace(microsecond=0)
    added = 0
    added += await _insert(session, CampaignTemplate, _templates())
    added += await _insert(session, EmailStep, _email_steps())
    added += await _insert(session, LinkedInStep, _linkedin_steps())
    added += await _insert(session, CampaignInstance, _instances(now))
    added += await _insert(session, InstanceTransition, _transitions(now))
    added += await _insert(session, Enrollment, _enrollments(now))
    added += await _insert(session, CampaignEvent, _events(now))
    if added:
        instance_ids = await session.scalars(
            select(CampaignInstance.id).where(
                CampaignInstance.id.in_([row["id"] for row in _instances(now)])
            )
        )
        ids = list(instance_ids)
        await rebuild_outcomes(session, ids)
        await rebuild_counters(session, ids)
    return added > 0


async def is_empty(session: AsyncSession) -> bool:
    return not await session.scalar(select(func.count()).select_from(CampaignTemplate))
