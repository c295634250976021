"""The declarative base, the columns every table shares, and helpers that keep enum and JSON
columns uniform."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    FetchedValue,
    Integer,
    MetaData,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.domain.addresses import ADDRESS_MAX, normalized_sql
from app.domain.enums import Channel
from app.domain.limits import JSON_MAX_BYTES

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names that migrations can refer to."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def pg_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A native PostgreSQL enum storing the lowercase values, not the member names."""
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def json_object_check(column: str) -> str:
    """The cheap half of the JSON limits: an object, and a bounded serialized size."""
    return f"jsonb_typeof({column}) = 'object' AND octet_length({column}::text) <= {JSON_MAX_BYTES}"


def json_object_column(name: str | None = None) -> Mapped[dict[str, Any]]:
    """A JSONB object column defaulting to ``{}``; ``name`` when the attribute differs."""
    args: tuple[Any, ...] = (name, JSONB) if name else (JSONB,)
    return mapped_column(*args, nullable=False, server_default=text("'{}'::jsonb"))


def counter_columns(names: Iterable[str]) -> Any:
    """A mixin of integer counter columns defaulting to 0, one per name, so that a model's
    counters follow the vocabulary. Listed first among the bases, they follow the model's own
    columns."""
    columns = {n: mapped_column(Integer, nullable=False, server_default=text("0")) for n in names}
    return type("CounterColumns", (), columns)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )


class TimestampMixin:
    """``updated_at`` is kept by a database trigger, so raw SQL updates move it too."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        server_onupdate=FetchedValue(),
    )


def address_constraints() -> tuple[CheckConstraint, ...]:
    """The address rules on every table that stores a (channel, address): bounded, and
    normalized exactly as the service normalizes it, so a lookup by address cannot miss."""
    return (
        CheckConstraint(f"char_length(address) BETWEEN 3 AND {ADDRESS_MAX}", name="address_length"),
        CheckConstraint(
            f"channel <> 'email' OR address = {normalized_sql(Channel.EMAIL, 'address')}",
            name="email_normalized",
        ),
        CheckConstraint(
            f"channel <> 'linkedin' OR address = {normalized_sql(Channel.LINKEDIN, 'address')}",
            name="linkedin_normalized",
        ),
    )
