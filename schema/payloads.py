"""Mutation payloads: the entity on success, or the errors that explain why nothing changed."""

from __future__ import annotations

import strawberry

from schema.errors import UserError
from schema.types.templates import CampaignTemplate, EmailStep, LinkedInStep


@strawberry.type
class TemplatePayload:
    template: CampaignTemplate | None
    errors: list[UserError]


@strawberry.type
class EmailStepPayload:
    step: EmailStep | None
    errors: list[UserError]


@strawberry.type(name="LinkedInStepPayload")
class LinkedInStepPayload:
    step: LinkedInStep | None
    errors: list[UserError]
