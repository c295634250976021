"""Instance lifecycle mutations: thin calls into app.services.lifecycle."""

from __future__ import annotations

import uuid
from typing import Any

from strawberry import UNSET

from app.domain.enums import InstanceStatus
from app.observability import metrics
from app.services import lifecycle
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


async def create_instance(context: Context, data: Any) -> Outcome[uuid.UUID]:
    values = {
        "template_id": data.template_id,
        "name": data.name,
        "provider_config": None if data.provider_config is UNSET else data.provider_config,
    }
    outcome = await run_mutation(
        context,
        lambda s: lifecycle.create_instance(s, values, context.principal.name),
        arguments=frozenset(),
    )
    if outcome.value is not None:
        metrics.instance_transitions_total.labels(InstanceStatus.DRAFT.value).inc()
    return outcome


async def transition(
    context: Context, instance_id: str, name: str, reason: str | None = None
) -> Outcome[uuid.UUID]:
    outcome = await run_mutation(
        context,
        lambda s: lifecycle.transition(s, instance_id, name, context.principal.name, reason),
        arguments=frozenset({"id", "reason"}),
    )
    if outcome.value is not None:
        target = lifecycle.TRANSITIONS[name].target
        metrics.instance_transitions_total.labels(target.value).inc()
    return outcome
