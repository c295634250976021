"""The database's share of the erasure rules, broken with raw SQL: an erased enrollment holds
no metadata and only a hashed contact id; hashes are SHA-256 hex; the audit counts are sane;
a suppression in clear of an erased address is dropped whoever writes it. And the hash the
service computes is the one SQL computes (the trigger and the enrollment check must agree)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.addresses import address_hash, hash_sql
from tests.constraints.helpers import (
    CHECK_VIOLATION,
    execute,
    insert_enrollment,
    insert_instance,
    insert_template,
    refused,
)

HEX = hashlib.sha256(b"crm-1").hexdigest()


@pytest.mark.parametrize(
    "address",
    ["ada@example.com", "jürgen.groß@exämple.de", "linkedin.com/in/zoë-ñ", "名前@例え.jp"],
)
async def test_the_service_and_sql_hash_an_address_alike(
    session: AsyncSession, address: str
) -> None:
    in_sql = await session.scalar(text(f"SELECT {hash_sql(':a')}"), {"a": address})
    assert in_sql == address_hash(address) == hashlib.sha256(address.encode()).hexdigest()


async def test_an_erased_enrollment_holds_no_metadata_and_no_contact_id(
    session: AsyncSession,
) -> None:
    instance_id = await insert_instance(session, await insert_template(session))
    enrollment_id = await insert_enrollment(
        session, instance_id, "crm-1", metadata='{"email": "ada@example.com"}'
    )
    update = "UPDATE enrollments SET erased_at = now(), {} WHERE id = :id"
    for change in (
        f"contact_id = 'erased:{HEX}'",  # metadata kept
        "metadata = '{}'",  # contact id kept
        "metadata = '{}', contact_id = 'erased:crm-1'",  # not a hash
    ):
        error = await refused(session, update.format(change), id=enrollment_id)
        assert (error.sqlstate, error.constraint_name) == (
            CHECK_VIOLATION,
            "ck_enrollments_erased_holds_nothing",
        )
    assert (
        await execute(
            session,
            update.format(f"metadata = '{{}}', contact_id = 'erased:{HEX}'"),
            id=enrollment_id,
        )
        == 1
    )


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO hashed_suppressions (channel, address_sha256)"
            " VALUES ('email', 'ada@example.com')",
            "ck_hashed_suppressions_address_sha256_hex",
        ),
        (
            "INSERT INTO contact_erasures (contact_sha256, actor, enrollments, events,"
            " dispatches, addresses) VALUES ('crm-1', 'ops', 1, 0, 0, 0)",
            "ck_contact_erasures_contact_sha256_hex",
        ),
        (
            "INSERT INTO contact_erasures (contact_sha256, actor, enrollments, events,"
            f" dispatches, addresses) VALUES ('{HEX}', '  ', 1, 0, 0, 0)",
            "ck_contact_erasures_actor_length",
        ),
        (
            "INSERT INTO contact_erasures (contact_sha256, actor, enrollments, events,"
            f" dispatches, addresses) VALUES ('{HEX}', 'ops', 0, 0, 0, 0)",
            "ck_contact_erasures_enrollments_positive",
        ),
        (
            "INSERT INTO contact_erasures (contact_sha256, actor, enrollments, events,"
            f" dispatches, addresses) VALUES ('{HEX}', 'ops', 1, -1, 0, 0)",
            "ck_contact_erasures_events_non_negative",
        ),
    ],
)
async def test_hashes_and_audit_counts_are_checked(
    session: AsyncSession, sql: str, constraint: str
) -> None:
    error = await refused(session, sql)
    assert (error.sqlstate, error.constraint_name) == (CHECK_VIOLATION, constraint)


async def test_a_suppression_in_clear_of_an_erased_address_is_dropped(
    session: AsyncSession,
) -> None:
    await execute(
        session,
        "INSERT INTO hashed_suppressions (channel, address_sha256) VALUES ('email', :h)",
        h=address_hash("ada@example.com"),
    )
    stored = await session.execute(
        text(
            "INSERT INTO suppressions (channel, address, reason) VALUES"
            " ('email', 'ada@example.com', 'unsubscribed'),"
            " ('linkedin', 'ada@example.com', 'manual'),"
            " ('email', 'bob@example.com', 'bounced')"
            " RETURNING channel::text, address"
        )
    )
    assert sorted(stored.all()) == [("email", "bob@example.com"), ("linkedin", "ada@example.com")]
