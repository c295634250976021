"""Ingestion is set-based: a batch runs the same few statements whatever its size and mix."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from tests.webhooks.helpers import T0, Step, event, make_campaign, ok_events

STEPS = (Step("email", 1, 0), Step("email", 2, 24), Step("linkedin", 3, 12))
TYPES = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed")
STATEMENT_BUDGET = 1
"""One statement resolves the enrollments, stores the events, counts their outcomes and moves
the enrollments."""


async def test_a_batch_runs_the_same_statements_whatever_its_size(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str
) -> None:
    campaign = await make_campaign(engine, STEPS, enrollments=40)
    rng = random.Random(4)
    warm = await ok_events(client, webhook_key, [event(campaign.enrollment_ids[0], "opened", 1)])
    assert warm["accepted"] == 1
    counts: dict[int, int] = {}
    for size in (2, 300):
        batch = [
            event(
                rng.choice(campaign.enrollment_ids),
                rng.choice(TYPES),
                rng.choice((1, 2)),
                T0 + timedelta(minutes=rng.randrange(1000)),
            )
            for _ in range(size - 1)
        ]
        batch.append(event(str(uuid.uuid4()), "opened", 1))  # an orphan
        batch[0] = event(campaign.enrollment_ids[0], "sent", 1)  # at least one moves its enrollment
        with recording(app.state.engine) as statements:
            answer = await ok_events(client, webhook_key, batch)
        assert answer["accepted"] == size, answer
        assert answer["orphaned"] == 1, answer
        counts[size] = len(statements)
    assert counts[2] == counts[300] <= STATEMENT_BUDGET, counts
