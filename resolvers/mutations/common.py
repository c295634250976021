"""The one way a mutation runs: a transaction that commits or rolls back before the payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import UNSET

from app.db.engine import run_in_transaction
from app.domain.enums import ErrorCode
from app.domain.errors import DomainError, DomainErrors
from resolvers.context import Context
from resolvers.loaders import Loaders

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PayloadError:
    """What the schema shows as a UserError: the input path at fault, a code, a message."""

    field: list[str]
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What the service returned (None when it refused), and the refusal's errors."""

    value: T | None
    errors: list[PayloadError]

    @property
    def entity_id(self) -> str | None:
        return None if self.value is None else str(self.value)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


JSON_FIELDS = frozenset({"metadata", "settings", "provider_config"})
"""Input fields that hold the client's own JSON object: a key below one is the client's own
(``metadata.linkedin_url``), named as sent, not as a schema field."""


def _schema_path(field: Iterable[str]) -> list[str]:
    """The GraphQL names of a service field path, down to the client's JSON keys."""
    path: list[str] = []
    inside_json = False
    for part in field:
        path.append(part if inside_json else camel(part))
        inside_json = inside_json or part in JSON_FIELDS
    return path


def _payload_errors(errors: Iterable[DomainError], arguments: frozenset[str]) -> list[PayloadError]:
    """Prefix input fields with ``input``; argument names (ids) stand alone."""
    result = []
    for error in errors:
        path = _schema_path(error.field)
        if path and error.field[0] not in arguments:
            path = ["input", *path]
        result.append(PayloadError(path, error.code, error.message))
    return result


async def run_mutation(
    context: Context,
    work: Callable[[AsyncSession], Awaitable[T]],
    arguments: frozenset[str] = frozenset({"id"}),
) -> Outcome[T]:
    """Run ``work`` in its own transaction; a domain error rolls it back and becomes payload
    errors. Loader caches are dropped after a write so the payload reads what was committed."""
    try:
        value = await run_in_transaction(context.sessionmaker, work)
    except DomainErrors as exc:
        return Outcome(None, _payload_errors(exc.errors, arguments))
    except DomainError as exc:
        return Outcome(None, _payload_errors([exc], arguments))
    context.loaders = Loaders(context.db)
    return Outcome(value, [])


def provided(values: Mapping[str, Any]) -> dict[str, Any]:
    """The input fields the client sent (explicit nulls included), keyed by snake_case name."""
    return {name: value for name, value in values.items() if value is not UNSET}
