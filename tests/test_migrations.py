"""Alembic: the migrations run both ways on an empty database, and match the models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import app.models  # noqa: F401  (registers every table on the metadata)
from app.db import migrate
from app.models.base import Base

# Everything of ours in the public schema, by kind; alembic_version's own objects aside.
OUR_OBJECTS = """
SELECT 'relation ' || relname FROM pg_class
 WHERE relnamespace = 'public'::regnamespace
   AND relname NOT IN ('alembic_version', 'alembic_version_pkc')
UNION ALL
SELECT 'type ' || typname FROM pg_type
 WHERE typnamespace = 'public'::regnamespace
   AND typname NOT IN ('alembic_version', '_alembic_version')
UNION ALL
SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""

# What compare_metadata does not look at: CHECK expressions, partial-index predicates,
# server defaults and enum labels, as PostgreSQL itself spells them.
DEFINITIONS = """
SELECT 'constraint ' || conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'
UNION ALL
SELECT 'index ' || tablename || '.' || indexname, indexdef
  FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'alembic_version'
UNION ALL
SELECT 'column ' || table_name || '.' || column_name,
       concat_ws(' ', udt_name, is_nullable, column_default)
  FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name <> 'alembic_version'
UNION ALL
SELECT 'enum ' || t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
 GROUP BY t.typname
"""

TRIGGERS = """
SELECT tgrelid::regclass::text AS table_name, tgname, tgfoid::regproc::text AS function
  FROM pg_trigger WHERE NOT tgisinternal
"""


@pytest.fixture
def empty_database_url(new_database: Callable[[str], tuple[str, str]]) -> str:
    """A brand-new database nobody has migrated."""
    return new_database("campaign_migrations")[1]


async def _query(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()


async def _objects(url: str) -> list[str]:
    return [row[0] for row in await _query(url, OUR_OBJECTS)]


async def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_database_url: str) -> None:
    url = empty_database_url
    await asyncio.to_thread(migrate.upgrade, url)
    assert await _revision(url) == migrate.head_revision()
    upgraded = await _objects(url)
    tables = {name.removeprefix("relation ") for name in upgraded}
    assert set(Base.metadata.tables) <= tables

    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await _revision(url) is None
    assert await _objects(url) == []

    await asyncio.to_thread(migrate.upgrade, url)
    assert await _revision(url) == migrate.head_revision()
    assert await _objects(url) == upgraded


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_models_and_migrations_do_not_drift(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        diff = await connection.run_sync(_diff)
    assert diff == []


async def test_migrated_schema_equals_the_models_create_all(
    database_url: str, empty_database_url: str
) -> None:
    """compare_metadata skips CHECK expressions and index predicates; PostgreSQL does not."""
    scratch = create_async_engine(empty_database_url, poolclass=NullPool)
    try:
        async with scratch.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await scratch.dispose()
    migrated = dict(await _query(database_url, DEFINITIONS))
    from_models = dict(await _query(empty_database_url, DEFINITIONS))
    assert {k: v for k, v in migrated.items() if from_models.get(k) != v} == {}
    assert migrated.keys() == from_models.keys()


async def test_every_table_keeps_updated_at_and_enrollments_guard_status(
    database_url: str,
) -> None:
    triggers = {tuple(row) for row in await _query(database_url, TRIGGERS)}
    expected = {
        (table, f"trg_{table}_updated_at", "set_updated_at")
        for table in Base.metadata.tables
        # Not updated in place: the rate limits' buckets and the live key holds keep their own
        # clock, written by each draw or renewal; the live activity log is append-only.
        if table not in ("rate_limit_buckets", "instance_activity", "live_key_holds")
    }
    expected.add(("enrollments", "trg_enrollments_status_guard", "enrollment_status_guard"))
    expected.add(
        ("campaign_events", "trg_campaign_events_reply_sentiment", "reply_takes_sentiment")
    )
    expected.add(("suppressions", "trg_suppressions_skip_erased", "suppressions_skip_erased"))
    expected.add(("api_keys", "trg_api_keys_announce", "api_keys_announce"))
    # Live updates (0009): every write of activity is appended and announced by the database.
    expected |= {
        ("campaign_events", "tr_campaign_events_live_insert", "live_events_inserted"),
        ("campaign_events", "tr_campaign_events_live_update", "live_events_linked"),
        ("enrollments", "tr_enrollments_live_update", "live_enrollments_changed"),
        ("dispatches", "tr_dispatches_live_insert", "live_dispatches_inserted"),
        ("dispatches", "tr_dispatches_live_update", "live_dispatches_changed"),
        (
            "instance_transitions",
            "tr_instance_transitions_live_insert",
            "live_instance_transitioned",
        ),
    }
    assert triggers == expected


async def test_keys_made_before_expiry_and_rotation_keep_working(empty_database_url: str) -> None:
    """0004 adds expiry and rotation to api_keys: a key stored before it still verifies after
    it (no expiry, no previous secret), and the downgrade keeps it too."""
    from app.security.api_keys import authenticate, hash_key

    url, key = empty_database_url, "cak_" + "k" * 43
    await asyncio.to_thread(migrate.upgrade, url, "20261207_0003")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO api_keys (name, key_hash, scopes)"
                    " VALUES ('older', :key_hash, ARRAY['read'])"
                ),
                {"key_hash": hash_key(key)},
            )
        await asyncio.to_thread(migrate.upgrade, url)
        async with engine.connect() as connection:
            principal = await authenticate(connection, key)
    finally:
        await engine.dispose()
    assert principal is not None
    assert (principal.name, principal.valid_for_s) == ("older", None)

    await asyncio.to_thread(migrate.downgrade, url, "20261207_0003")
    assert await _query(url, "SELECT name FROM api_keys") == [("older",)]
