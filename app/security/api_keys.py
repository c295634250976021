"""API keys: creation (shown once), lookup by SHA-256 hash, scopes, expiry, rotation, revocation.

Whether a key is still valid is decided by the database's clock (``now()``), never the
process's, so that every process and the CLI agree on when a key expires or a grace ends.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.domain.enums import ErrorCode, Scope
from app.domain.errors import DomainError
from app.models import ApiKey

KEY_PREFIX = "cak_"
LONGEST_DURATION = timedelta(days=3650)
"""The longest expiry or grace period: ten years keeps every date representable."""
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
"""How long a rotated key's previous secret keeps working: a day to move every client over."""
USE_WRITE_MIN_S = 50
"""The database skips a ``last_used_at`` write this soon after the previous one, so processes
sharing a key do not each write it every minute (each process asks at most once a minute)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name and what it may do (never the key itself).

    ``valid_for_s`` is how many more seconds the presented secret was valid when it was
    verified (until the key's expiry, or the end of a rotation's grace); None when it has no
    end. The key cache forgets the key by then.
    """

    key_id: uuid.UUID
    name: str
    scopes: frozenset[Scope]
    valid_for_s: float | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    name: str
    scopes: tuple[str, ...]
    state: str
    """``active``, ``expired`` or ``revoked``, by the database's clock."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    previous_valid_until: datetime | None
    """When a rotation's previous secret stops working; None when none is in its grace."""


def looks_like_key(key: str) -> bool:
    """Whether ``key`` could be one of ours: anything else is refused without a lookup."""
    return key.startswith(KEY_PREFIX) and len(key) <= 200


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


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


def _check_duration(value: timedelta, field: str, what: str, *, zero_allowed: bool) -> None:
    if value < timedelta(0) or (value == timedelta(0) and not zero_allowed):
        least = "0 or more" if zero_allowed else "longer than 0"
        raise DomainError(ErrorCode.INVALID, f"{what} must be {least}", (field,))
    if value > LONGEST_DURATION:
        raise DomainError(
            ErrorCode.INVALID, f"{what} is at most {LONGEST_DURATION.days} days", (field,)
        )


async def create_api_key(
    session: AsyncSession,
    name: str,
    scopes: frozenset[Scope],
    expires_in: timedelta | None = None,
) -> str:
    """Store a new key's hash and return the key: the only time it is ever visible.

    With ``expires_in``, the key is refused from that long after now (the database's now).
    """
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise DomainError(ErrorCode.INVALID, "a key name has 1 to 100 characters", ("name",))
    if expires_in is not None:
        _check_duration(expires_in, "expires_in", "a key's lifetime", zero_allowed=False)
    key = _new_key()
    session.add(
        ApiKey(
            name=name,
            key_hash=hash_key(key),
            scopes=sorted(s.value for s in scopes),
            expires_at=None if expires_in is None else func.now() + expires_in,
        )
    )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise DomainError(
            ErrorCode.INVALID, f"an API key named {name!r} already exists", ("name",)
        ) from None
    return key


def _still_valid() -> Any:
    return or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now())


async def rotate_api_key(
    session: AsyncSession,
    name: str,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    expires_in: timedelta | None = None,
) -> str:
    """Give the key ``name`` a new secret and return it (shown once, like a new key's).

    The secret it had keeps working for ``grace`` (0: refused at once); a secret from an
    earlier rotation still in its grace stops at once. The key keeps its name, scopes and
    expiry, unless ``expires_in`` sets a new expiry counted from now. A revoked or expired key
    cannot be rotated.
    """
    _check_duration(grace, "grace", "the grace period", zero_allowed=True)
    if expires_in is not None:
        _check_duration(expires_in, "expires_in", "a key's lifetime", zero_allowed=False)
    key = _new_key()
    values: dict[str, Any] = {"key_hash": hash_key(key), "rotated_at": func.now()}
    if grace > timedelta(0):
        # On the right of SET, key_hash is the row's value before this statement.
        values["previous_key_hash"] = ApiKey.key_hash
        values["previous_key_valid_until"] = func.now() + grace
    else:
        values["previous_key_hash"] = values["previous_key_valid_until"] = None
    if expires_in is not None:
        values["expires_at"] = func.now() + expires_in
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked.is_(False), _still_valid())
        .values(**values)
        .returning(ApiKey.id)
    )
    if result.first() is None:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"no active API key named {name!r} (a revoked or expired key cannot be rotated)",
            ("name",),
        )
    return key


async def list_api_keys(session: AsyncSession) -> list[ApiKeyInfo]:
    state = case(
        (ApiKey.revoked, "revoked"),
        (ApiKey.expires_at <= func.now(), "expired"),
        else_="active",
    )
    in_grace = case(
        (ApiKey.previous_key_valid_until > func.now(), ApiKey.previous_key_valid_until),
        else_=None,
    )
    rows = await session.execute(
        select(
            ApiKey.name,
            ApiKey.scopes,
            state,
            ApiKey.created_at,
            ApiKey.expires_at,
            ApiKey.last_used_at,
            in_grace,
        ).order_by(ApiKey.created_at, ApiKey.name)
    )
    return [ApiKeyInfo(r[0], tuple(r[1]), *r[2:]) for r in rows]


async def revoke_api_key(session: AsyncSession, name: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked.is_(False))
        .values(revoked=True, revoked_at=text("now()"))
        .returning(ApiKey.id)
    )
    if result.first() is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no active API key named {name!r}", ("name",))


# The current secret, or the previous one during its grace, of a key neither revoked nor
# expired; with the seconds left before whichever end comes first (NULL: none).
_AUTHENTICATE = text(
    """
    SELECT id, name, scopes,
           extract(epoch FROM least(
               expires_at,
               CASE WHEN key_hash = :key_hash THEN NULL ELSE previous_key_valid_until END
           ) - now())::float8 AS valid_for_s
    FROM api_keys
    WHERE (key_hash = :key_hash
           OR (previous_key_hash = :key_hash AND previous_key_valid_until > now()))
      AND NOT revoked
      AND (expires_at IS NULL OR expires_at > now())
    """
)


async def authenticate(connection: AsyncConnection, key: str) -> Principal | None:
    """The principal for ``key``, or None for an unknown, revoked or expired key, or a
    rotated-out secret whose grace has ended.

    The secret is never compared as a string: only its SHA-256 is looked up. Nothing is
    written here: the key's use is recorded later, off the request path (``key_use``).
    """
    if not looks_like_key(key):
        return None
    row = (await connection.execute(_AUTHENTICATE, {"key_hash": hash_key(key)})).first()
    if row is None:
        return None
    return Principal(
        key_id=row.id,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes),
        valid_for_s=row.valid_for_s,
    )


_RECORD_USE = (
    update(ApiKey)
    .where(
        ApiKey.id == any_(bindparam("key_ids", type_=ARRAY(Uuid))),
        or_(
            ApiKey.last_used_at.is_(None),
            ApiKey.last_used_at < func.now() - timedelta(seconds=USE_WRITE_MIN_S),
        ),
    )
    .values(last_used_at=func.now())
)


async def record_key_use(connection: AsyncConnection, key_ids: Collection[uuid.UUID]) -> None:
    """Set ``last_used_at`` to now for these keys, in one statement."""
    if key_ids:
        await connection.execute(_RECORD_USE, {"key_ids": list(key_ids)})
