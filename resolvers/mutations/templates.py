"""Template and step mutations: thin calls into app.services.templates."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from app.models import EmailStep, LinkedInStep
from app.services import templates as service
from resolvers.context import Context
from resolvers.mutations.common import Outcome, provided, run_mutation

_STEP_MODELS = {"email": EmailStep, "linkedin": LinkedInStep}


def _fields(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    return provided({f.name: getattr(data, f.name) for f in fields(data)})


async def create_template(context: Context, data: Any) -> Outcome:
    return await run_mutation(
        context,
        lambda s: service.create_template(s, _fields(data), context.principal.name),
    )


async def update_template(context: Context, template_id: str, data: Any) -> Outcome:
    return await run_mutation(
        context, lambda s: service.update_template(s, template_id, _fields(data))
    )


async def archive_template(context: Context, template_id: str) -> Outcome:
    return await run_mutation(context, lambda s: service.archive_template(s, template_id))


async def add_step(context: Context, channel: str, template_id: str, data: Any) -> Outcome:
    return await run_mutation(
        context,
        lambda s: service.add_step(s, _STEP_MODELS[channel], template_id, _fields(data)),
        arguments=frozenset({"template_id"}),
    )


async def update_step(context: Context, channel: str, step_id: str, data: Any) -> Outcome:
    return await run_mutation(
        context, lambda s: service.update_step(s, _STEP_MODELS[channel], step_id, _fields(data))
    )


async def remove_step(context: Context, channel: str, step_id: str) -> Outcome:
    return await run_mutation(
        context, lambda s: service.remove_step(s, _STEP_MODELS[channel], step_id)
    )
