"""The rows other rows of the database-guard tests point at."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.constraints.helpers import insert_enrollment, insert_instance, insert_template


@pytest.fixture
async def parents(session: AsyncSession) -> dict[str, uuid.UUID]:
    """A template, one instance of it and one enrollment: what other rows point at."""
    template_id = await insert_template(session, type="multi_channel")
    instance_id = await insert_instance(session, template_id)
    enrollment_id = await insert_enrollment(session, instance_id)
    return {"template_id": template_id, "instance_id": instance_id, "enrollment_id": enrollment_id}
