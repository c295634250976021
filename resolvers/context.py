"""The per-request context every resolver sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.security.api_keys import Principal
from app.settings import Settings
from resolvers.loaders import Loaders, RequestDatabase


@dataclass(slots=True)
class Context:
    """Request-scoped resources: fresh DataLoader caches and one read connection per request."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    principal: Principal
    db: RequestDatabase
    request_state: dict[str, Any]
    """The ASGI ``scope["state"]``: what the access log reads after the response."""
    live: Any = None
    """A WebSocket connection's ``resolvers.subscriptions.LiveSession``; None over HTTP."""
    connection_params: Any = None
    """A WebSocket connection's ``connection_init`` payload (where browsers put the key)."""
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db)

    def reset_for_retry(self) -> None:
        """Forget what this request loaded, so a re-run sees what a first run would see."""
        self.loaders = Loaders(self.db)
