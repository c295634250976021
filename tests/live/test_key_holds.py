"""The per-key limit on open subscriptions, counted for the whole service (``KeyHolds``): each
``KeyHolds`` here stands for one serving process, all on the test database."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine
from app.services.live.holds import KeyHolds
from app.settings import Settings

LIMIT = 4


async def test_processes_share_a_keys_limit_and_a_closed_subscription_frees_its_place(
    clean_db: None, engine: AsyncEngine
) -> None:
    key = uuid.uuid4()
    first, second = KeyHolds(engine), KeyHolds(engine)
    assert [await first.admit(key, LIMIT) for _ in range(3)] == [True] * 3
    assert await second.admit(key, LIMIT)
    assert not await second.admit(key, LIMIT)
    assert not await first.admit(key, LIMIT)
    # Another key has its own count.
    assert await second.admit(uuid.uuid4(), LIMIT)

    first.released(key)
    assert not await second.admit(key, LIMIT), "counted as held until the first one flushes"
    await first.flush()
    assert await second.admit(key, LIMIT)
    assert (first.held(key), second.held(key)) == (2, 2)

    await first.close()
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT process, held FROM live_key_holds WHERE key_id = :k"), {"k": key}
        )
        assert dict(rows.all()) == {second.process: 2}


async def test_concurrent_admissions_never_pass_the_limit(
    clean_db: None, engine: AsyncEngine
) -> None:
    key = uuid.uuid4()
    processes = [KeyHolds(engine) for _ in range(5)]
    admitted = await asyncio.gather(
        *(holds.admit(key, LIMIT) for holds in processes for _ in range(3))
    )
    assert admitted.count(True) == LIMIT
    assert sum(holds.held(key) for holds in processes) == LIMIT


async def test_a_process_that_stops_renewing_stops_counting_when_its_lease_runs_out(
    clean_db: None, engine: AsyncEngine
) -> None:
    key = uuid.uuid4()
    dead = KeyHolds(engine, lease_s=1.0)
    assert [await dead.admit(key, 2) for _ in range(2)] == [True, True]
    alive = KeyHolds(engine)
    assert not await alive.admit(key, 2)
    async with engine.connect() as connection:
        # The database's clock decides: wait until it says the dead one's lease ran out.
        await connection.execute(text("SELECT pg_sleep(1.1)"))
    assert await alive.admit(key, 2)


async def test_without_the_database_each_process_counts_its_own(database_url: str) -> None:
    nowhere = make_url(database_url).set(host="127.0.0.1", port=9)
    unreachable = create_engine(
        Settings(database_url=nowhere.render_as_string(hide_password=False), pool_timeout_s=1)
    )
    try:
        holds = KeyHolds(unreachable)
        key = uuid.uuid4()
        assert [await holds.admit(key, 2) for _ in range(3)] == [True, True, False]
        holds.released(key)
        await holds.flush()
        assert await holds.admit(key, 2)
    finally:
        await unreachable.dispose()
