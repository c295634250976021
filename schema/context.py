"""The per-request context every resolver sees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth import Principal
from app.settings import Settings


@dataclass(slots=True)
class Context:
    """Request-scoped resources; loaders are created lazily so each request gets fresh caches."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    principal: Principal
