"""The activity triggers that join a statement's old and new rows (migration 0012): in a
session whose first firing saw no rows (as a sender's claim does, batch after batch), a later
statement of hundreds of rows must not join them pair by pair. The plans are read through
auto_explain, which logs the triggers' own statements to this session."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from testkit.campaigns import build_campaign
from tests.test_notifications import dsn_of

ROWS = 300

STATEMENTS = {
    "live_enrollments_changed": "UPDATE enrollments SET next_action_at = now() WHERE {}",
    "live_dispatches_changed": "UPDATE dispatches SET last_error = 'x' WHERE {}",
    "live_events_linked": "UPDATE campaign_events SET metadata = '{{}}' WHERE {}",
}


async def _plans(connection: asyncpg.Connection, statement: str) -> tuple[int, list[str]]:
    """The rows ``statement`` changed, and the plans auto_explain reported for it and for the
    statements it caused."""
    notices: list[str] = []

    def listen(_: object, message: asyncpg.PostgresLogMessage) -> None:
        notices.append(message.message)

    connection.add_log_listener(listen)
    try:
        status = await connection.execute(statement)
    finally:
        connection.remove_log_listener(listen)
    return int(status.split()[-1]), notices


@pytest.mark.parametrize("function", sorted(STATEMENTS))
async def test_a_trigger_first_fired_with_no_rows_later_joins_hundreds_without_a_nested_loop(
    clean_db: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    function: str,
) -> None:
    campaign = await build_campaign(sessionmaker, ROWS, template_type="email")
    connection = await asyncpg.connect(dsn_of(database_url))
    try:
        await connection.execute(
            "INSERT INTO dispatches (enrollment_id, instance_id, channel, step_number, provider,"
            " status, attempts, due_at)"
            " SELECT id, instance_id, 'email', 1, 'postmark', 'cancelled', 1, now()"
            " FROM enrollments WHERE instance_id = $1::uuid",
            campaign.instance_id,
        )
        await connection.execute(
            "INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel,"
            " provider, occurred_at, metadata)"
            " SELECT id, instance_id, 'opened', 'email', 'postmark', now(), '{}'"
            " FROM enrollments WHERE instance_id = $1::uuid",
            campaign.instance_id,
        )
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_level = notice",
            "SET client_min_messages = notice",
        ):
            await connection.execute(setting)
        template = STATEMENTS[function]
        async with connection.transaction():
            for _ in range(3):
                await connection.execute(template.format("false"))
            changed, plans = await _plans(connection, template.format("true"))
    finally:
        await connection.close()
    assert changed == ROWS
    joins = [plan for plan in plans if "JOIN old_rows" in plan]
    assert joins, f"auto_explain reported no plan of {function}'s join: {plans!r}"
    for plan in joins:
        assert "Nested Loop" not in plan, plan
        assert "Hash Join" in plan, plan
