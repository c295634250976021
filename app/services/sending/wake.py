"""Tell sleeping senders that work may have become due, from inside the writing transaction:
PostgreSQL delivers a NOTIFY only when that transaction commits, so a sender never wakes for
work it cannot see yet."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "campaign_sender"
"""The LISTEN channel; the payload is empty: a woken sender re-reads what is due."""


async def wake_senders(session: AsyncSession) -> None:
    await session.execute(text(f"NOTIFY {CHANNEL}"))
