"""API keys: creation (shown once), lookup by SHA-256 hash, scopes, revocation."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.domain.enums import ErrorCode, Scope
from app.domain.errors import DomainError
from app.models import ApiKey

KEY_PREFIX = "cak_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name and what it may do (never the key itself)."""

    key_id: uuid.UUID
    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def looks_like_key(key: str) -> bool:
    """Whether ``key`` could be one of ours: anything else is refused without a lookup."""
    return key.startswith(KEY_PREFIX) and len(key) <= 200


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | Iterable[str]) -> frozenset[Scope]:
    """``"read,write"`` or an iterable of names; an unknown scope is refused, not dropped."""
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes: set[Scope] = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            scopes.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise DomainError(
                ErrorCode.INVALID, f"unknown scope {name!r}; known scopes: {known}", ("scopes",)
            ) from None
    if not scopes:
        raise DomainError(ErrorCode.INVALID, "at least one scope is needed", ("scopes",))
    return frozenset(scopes)


async def create_api_key(session: AsyncSession, name: str, scopes: frozenset[Scope]) -> str:
    """Store a new key's hash and return the key: the only time it is ever visible."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise DomainError(ErrorCode.INVALID, "a key name has 1 to 100 characters", ("name",))
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, key_hash=hash_key(key), scopes=sorted(s.value for s in scopes)))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise DomainError(
            ErrorCode.INVALID, f"an API key named {name!r} already exists", ("name",)
        ) from None
    return key


async def list_api_keys(session: AsyncSession) -> list[ApiKeyInfo]:
    rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.name))
    return [
        ApiKeyInfo(k.name, tuple(k.scopes), k.created_at, k.last_used_at, k.revoked) for k in rows
    ]


async def revoke_api_key(session: AsyncSession, name: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked.is_(False))
        .values(revoked=True, revoked_at=text("now()"))
        .returning(ApiKey.id)
    )
    if result.first() is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no active API key named {name!r}", ("name",))


# One round trip: find the key by hash and, at most once a minute, record that it was used.
_AUTHENTICATE = text(
    """
    WITH found AS (
        SELECT id, name, scopes, last_used_at FROM api_keys
        WHERE key_hash = :key_hash AND NOT revoked
    ), touched AS (
        UPDATE api_keys SET last_used_at = now()
        FROM found
        WHERE api_keys.id = found.id
          AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '60 seconds')
    )
    SELECT id, name, scopes FROM found
    """
)


async def authenticate(connection: AsyncConnection, key: str) -> Principal | None:
    """The principal for ``key``, or None for an unknown or revoked key.

    The secret is never compared as a string: only its SHA-256 is looked up.
    """
    if not looks_like_key(key):
        return None
    row = (await connection.execute(_AUTHENTICATE, {"key_hash": hash_key(key)})).first()
    if row is None:
        return None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(Scope(s) for s in row.scopes))
