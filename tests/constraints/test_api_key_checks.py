"""The database's own rules for key expiry and rotation, broken with raw SQL: each refused by
its named CHECK (or unique) constraint, and each boundary shown from both sides."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.constraints.helpers import (
    AT,
    UNIQUE_VIOLATION,
    assert_row_rule,
    case,
    insert,
    refused,
)

SECOND = timedelta(seconds=1)
OTHER_HASH = "1" * 64
ROTATED = {
    "created_at": AT,
    "rotated_at": AT,
    "previous_key_hash": OTHER_HASH,
    "previous_key_valid_until": AT + SECOND,
}


def ck(name: str) -> str:
    return f"ck_api_keys_{name}"


CASES = [
    case("api_keys", {"created_at": AT, "expires_at": AT + SECOND}, None, "expires after"),
    case("api_keys", {"created_at": AT, "expires_at": AT}, ck("expires_after_created"), "at once"),
    case(
        "api_keys",
        {"created_at": AT, "expires_at": AT - SECOND},
        ck("expires_after_created"),
        "expired before it existed",
    ),
    case("api_keys", {"created_at": AT, "rotated_at": AT}, None, "rotated when created"),
    case(
        "api_keys",
        {"created_at": AT, "rotated_at": AT - SECOND},
        ck("rotated_after_created"),
        "rotated before it existed",
    ),
    case("api_keys", ROTATED, None, "previous secret in its grace"),
    case(
        "api_keys",
        {**ROTATED, "previous_key_valid_until": None},
        ck("previous_key_has_grace"),
        "previous secret without a grace",
    ),
    case(
        "api_keys",
        {**ROTATED, "previous_key_hash": None},
        ck("previous_key_has_grace"),
        "grace without a previous secret",
    ),
    case(
        "api_keys",
        {**ROTATED, "previous_key_valid_until": AT},
        ck("previous_key_rotated"),
        "grace ending at the rotation",
    ),
    case(
        "api_keys",
        {**ROTATED, "rotated_at": None},
        ck("previous_key_rotated"),
        "previous secret never rotated",
    ),
    case(
        "api_keys",
        {**ROTATED, "previous_key_hash": "0" * 64},
        ck("previous_key_rotated"),
        "previous secret equal to the current",
    ),
    case(
        "api_keys",
        {**ROTATED, "previous_key_hash": "A" * 64},
        ck("previous_key_rotated"),
        "previous hash upper-case",
    ),
]


@pytest.mark.parametrize(("table", "overrides", "refused_by"), CASES)
async def test_check_constraint(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    table: str,
    overrides: dict[str, Any],
    refused_by: str | None,
) -> None:
    await assert_row_rule(session, parents, table, overrides, refused_by)


async def test_a_previous_secret_belongs_to_one_key(session: AsyncSession) -> None:
    await insert(session, "api_keys", name="first", key_hash="2" * 64, scopes=["read"], **ROTATED)
    row = {"name": "second", "key_hash": "3" * 64, "scopes": ["read"], **ROTATED}
    columns = ", ".join(row)
    params = ", ".join(f":{column}" for column in row)
    error = await refused(session, f"INSERT INTO api_keys ({columns}) VALUES ({params})", **row)
    assert (error.sqlstate, error.constraint_name) == (
        UNIQUE_VIOLATION,
        "uq_api_keys_previous_key_hash",
    )
