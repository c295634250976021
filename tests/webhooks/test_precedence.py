"""Terminal statuses: unsubscribed > bounced > replied > completed, whatever the arrival order
(domain.md, Enrollments; webhooks.md, "Order-free")."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.webhooks.helpers import (
    RANK,
    T0,
    Step,
    enrollment_state,
    event,
    make_campaign,
    ok_events,
)

# Step 2 is the last step, and enrollments start having sent step 1.
STEPS = (Step("email", 1, 0), Step("email", 2, 48))
PRODUCERS = {
    "completed": ("sent", 2),  # the last step sent
    "replied": ("replied", 2),
    "bounced": ("bounced", 2),
    "unsubscribed": ("unsubscribed", 2),
}


def producing(enrollment_id: str, outcome: str, hours: int) -> dict[str, Any]:
    event_type, step = PRODUCERS[outcome]
    return event(enrollment_id, event_type, step, T0 + timedelta(hours=hours))


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(PRODUCERS, 2)))
async def test_the_higher_status_wins_in_either_order(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    webhook_key: str,
    app: Starlette,
    first: str,
    second: str,
) -> None:
    """One enrollment gets the two events in two requests, another in one request; the
    occurred_at order is the arrival order (so later never simply means higher)."""
    campaign = await make_campaign(
        engine, STEPS, template_type="email", enrollments=2, current_step=1
    )
    separate, together = campaign.enrollment_ids
    await ok_events(client, webhook_key, [producing(separate, first, 1)])
    await ok_events(client, webhook_key, [producing(separate, second, 2)])
    await ok_events(
        client, webhook_key, [producing(together, first, 1), producing(together, second, 2)]
    )
    expected = max(first, second, key=RANK.__getitem__)
    for enrollment_id in (separate, together):
        state = await enrollment_state(engine, enrollment_id)
        assert state["status"] == expected, enrollment_id == separate
        assert state["next_action_at"] is None
        assert state["current_step"] == (2 if "completed" in (first, second) else 1)
        # Unsubscribed when the unsubscribe occurred (producing() puts `first` at hour 1).
        hour = 1 if first == "unsubscribed" else 2
        unsubscribed_at = T0 + timedelta(hours=hour) if expected == "unsubscribed" else None
        assert state["unsubscribed_at"] == unsubscribed_at


async def test_late_sent_never_reopens_a_terminal_enrollment(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    steps = (Step("email", 1, 0), Step("email", 2, 48), Step("email", 3, 48))
    campaign = await make_campaign(engine, steps, template_type="email", enrollments=3)
    for enrollment_id, outcome in zip(
        campaign.enrollment_ids, ("replied", "bounced", "unsubscribed"), strict=True
    ):
        await ok_events(client, webhook_key, [event(enrollment_id, outcome, 1, T0)])
        # A sent of a middle step and then of the last step, arriving afterwards.
        await ok_events(client, webhook_key, [event(enrollment_id, "sent", 2, T0 - timedelta(1))])
        await ok_events(client, webhook_key, [event(enrollment_id, "sent", 3, T0 + timedelta(1))])
        state = await enrollment_state(engine, enrollment_id)
        assert state["status"] == outcome
        assert state["current_step"] == 3
        assert state["next_action_at"] is None


# ----------------------------------------------------------------------------- timestamps
#
# "Order-free" covers the whole final state, not only the status: the same set of events must
# leave the same timestamps whatever order they arrive in.


async def final_states(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    key: str,
    steps: tuple[Step, ...],
    events: list[tuple[str, int, int, dict[str, Any]]],
    template_type: str = "multi_channel",
) -> list[dict[str, Any]]:
    """Post ``events`` (type, step, hours after T0, extra) in their order to one enrollment
    and in reverse order to another; return both final states (updated_at left out)."""
    campaign = await make_campaign(engine, steps, template_type=template_type, enrollments=2)
    forward, backward = campaign.enrollment_ids
    for enrollment_id, sequence in ((forward, events), (backward, events[::-1])):
        for event_type, step, hours, extra in sequence:
            body = event(enrollment_id, event_type, step, T0 + timedelta(hours=hours), **extra)
            await ok_events(client, key, [body])
    states = [await enrollment_state(engine, e) for e in (forward, backward)]
    for state in states:
        del state["updated_at"]
    return states


async def test_two_touches_of_one_step_schedule_the_same_next_action_in_either_order(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    """Step 2 has an email and a LinkedIn touch, reported at different times."""
    steps = (
        Step("email", 1, 0),
        Step("email", 2, 24),
        Step("linkedin", 2, 24),
        Step("email", 3, 48),
    )
    forward, backward = await final_states(
        client,
        engine,
        webhook_key,
        steps,
        [("sent", 2, 0, {}), ("connection_requested", 2, 5, {})],
    )
    assert forward["current_step"] == backward["current_step"] == 2
    assert forward["next_action_at"] == backward["next_action_at"]


async def test_two_touches_of_the_last_step_give_the_same_completed_at_in_either_order(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    steps = (Step("email", 1, 0), Step("linkedin", 1, 0))
    forward, backward = await final_states(
        client,
        engine,
        webhook_key,
        steps,
        [("sent", 1, 0, {}), ("profile_visited", 1, 5, {})],
    )
    assert forward["status"] == backward["status"] == "completed"
    assert forward["completed_at"] == backward["completed_at"]


async def test_two_unsubscribes_give_the_same_unsubscribed_at_in_either_order(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, app: Starlette
) -> None:
    """E.g. lemlist's emailsUnsubscribed and Postmark's SubscriptionChange for one person."""
    forward, backward = await final_states(
        client,
        engine,
        webhook_key,
        (Step("email", 1, 0), Step("email", 2, 24)),
        [("unsubscribed", 1, 0, {}), ("spam_complaint", 1, 5, {})],
        template_type="email",
    )
    assert forward["status"] == backward["status"] == "unsubscribed"
    assert forward["unsubscribed_at"] == backward["unsubscribed_at"]
