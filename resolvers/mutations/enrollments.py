"""Enrollment mutations: thin calls into app.services.enrollment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from strawberry import UNSET

from app.domain.enums import CrossCampaignPolicy
from app.observability import metrics
from app.services import enrollment
from app.services.enrollment import BulkResult, ContactInput, EnrollResult
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


def _contact(data: Any) -> ContactInput:
    metadata = None if data.metadata is UNSET else data.metadata
    return ContactInput(contact_id=data.contact_id, metadata=metadata)


async def enroll_contact(
    context: Context, instance_id: str, data: Any, policy: CrossCampaignPolicy | None = None
) -> Outcome[EnrollResult]:
    outcome = await run_mutation(
        context,
        lambda s: enrollment.enroll_contact(s, instance_id, _contact(data), policy),
        arguments=frozenset({"instance_id", "policy"}),
    )
    if outcome.value is not None:
        metrics.enrollments_created_total.labels("enrollContact").inc()
    return outcome


async def bulk_enroll(
    context: Context,
    instance_id: str,
    contacts: Sequence[Any],
    policy: CrossCampaignPolicy | None = None,
) -> Outcome[BulkResult]:
    outcome = await run_mutation(
        context,
        lambda s: enrollment.bulk_enroll(s, instance_id, [_contact(c) for c in contacts], policy),
        arguments=frozenset({"instance_id", "contacts", "policy"}),
    )
    if outcome.value is not None:
        metrics.enrollments_created_total.labels("bulkEnroll").inc(len(outcome.value.enrolled_ids))
    return outcome


async def change(context: Context, enrollment_id: str, action: str) -> Outcome[uuid.UUID]:
    return await run_mutation(
        context, lambda s: enrollment.change_enrollment(s, enrollment_id, action)
    )
