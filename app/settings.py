"""Configuration from the environment (prefix ``CAMPAIGN_``, plus plain ``DATABASE_URL``)."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.domain.limits import BULK_ENROLL_MAX, CONTACT_ID_MAX, JSON_MAX_BYTES


class ConfigError(Exception):
    """A configuration problem, reported as one line rather than a traceback."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def normalize_database_url(raw: str) -> str:
    """Accept ``postgresql://`` and ``postgresql+asyncpg://`` and return the asyncpg form."""
    try:
        url: URL = make_url(raw)
        port = url.port  # parsed lazily: a non-numeric port fails here
    except (ArgumentError, ValueError) as exc:
        raise ValueError("is not a URL like postgresql://user:password@host:port/db") from exc
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"must be a PostgreSQL URL, not {url.get_backend_name()!r}")
    if url.get_driver_name() not in ("", "asyncpg", "psycopg2", "psycopg", "default"):
        raise ValueError(f"driver {url.get_driver_name()!r} is not supported; use asyncpg")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    if not url.database:
        raise ValueError("names no database")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def largest_contact_list_bytes() -> int:
    """The JSON of the largest contact list bulkEnroll accepts: BULK_ENROLL_MAX contacts, each
    with the longest contactId (4 bytes a character in UTF-8) and metadata as large as it may be
    stored, written compactly (characters escaped as ``\\uXXXX`` take more room)."""
    punctuation = len('{"contactId":"","metadata":},')
    return BULK_ENROLL_MAX * (punctuation + 4 * CONTACT_ID_MAX + JSON_MAX_BYTES)


def parse_bind(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9100`` for IPv6) into its parts; ValueError when malformed."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must look like host:port, e.g. 127.0.0.1:9100")
    return host.strip("[]"), int(port)


def parse_forwarded_allow_ips(value: str) -> list[str]:
    """``10.0.0.1,10.1.0.0/16`` (or ``*``) into its entries; ValueError on anything else, so a
    typo cannot silently trust every peer or none."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (e.g. 10.0.0.1 or 10.0.0.0/8), nor *"
            ) from None
    return entries


class Settings(BaseSettings):
    """Every knob of the service; see the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CAMPAIGN_DATABASE_URL")
    )
    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path(".data")
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_ms: int = Field(default=10_000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)
    log_level: str = "INFO"
    lemlist_webhook_secret: SecretStr | None = None
    postmark_webhook_user: str | None = None
    postmark_webhook_password: SecretStr | None = None
    phantombuster_webhook_secret: SecretStr | None = None
    webhook_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    fast_execution: bool = True
    slow_sql_ms: int = Field(default=1_000, ge=0)
    metrics_bind: str | None = None
    shutdown_grace_s: int = Field(default=20, ge=1, le=3600)
    # Abuse limits (issue 6): GraphQL documents, request bodies, request rates, introspection.
    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=5_000, ge=10)
    max_query_cost: int = Field(default=50_000, ge=1)
    graphql_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    graphql_write_max_bytes: int | None = Field(default=None, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    auth_failures_per_minute: int = Field(default=20, ge=1)
    webhook_rate_limit_per_minute: int = Field(default=6_000, ge=1)
    introspection: bool | None = None
    auth_cache_s: float = Field(default=5.0, ge=0, le=300)
    # Live updates (issue 26): GraphQL subscriptions over WebSocket.
    live_subscriptions_per_key: int = Field(default=100, ge=1, le=100_000)
    """Open subscriptions one API key may hold on one process."""
    live_subscriptions_per_connection: int = Field(default=20, ge=1, le=1_000)
    live_queue_size: int = Field(default=256, ge=1, le=100_000)
    """Items waiting for one subscriber; one more closes it (close code 4499)."""
    live_connection_init_timeout_s: float = Field(default=10.0, gt=0, le=300)
    live_batch_limit: int = Field(default=100, ge=1, le=10_000)
    """Items read per instance and load; more are read by the next load (keep it below the
    queue size, or one burst closes every subscriber of the instance)."""
    live_activity_retention_h: float = Field(default=168.0, gt=0)
    """How long the activity log keeps an item for ``after`` (pruned hourly)."""
    # The HTTP edge (issue 24): what the server itself bounds, before any route runs.
    forwarded_allow_ips: str = ""
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=10, le=10_000)
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    # Sending (issue 23): the providers' APIs and credentials, the sender's timing.
    postmark_api_url: str = "https://api.postmarkapp.com"
    postmark_server_token: SecretStr | None = None
    phantombuster_api_url: str = "https://api.phantombuster.com"
    phantombuster_api_key: SecretStr | None = None
    lemlist_api_url: str = "https://api.lemlist.com"
    lemlist_api_key: SecretStr | None = None
    send_retry_base_s: float = Field(default=1.0, gt=0, le=3600)
    send_retry_max_s: float = Field(default=300.0, gt=0, le=86_400)
    send_max_attempts: int = Field(default=8, ge=1, le=100)
    send_lease_s: float = Field(default=60.0, gt=0, le=3600)
    send_concurrency: int = Field(default=32, ge=1, le=1000)
    send_batch: int = Field(default=500, ge=1, le=5000)
    send_http_timeout_s: float = Field(default=10.0, gt=0, le=300)
    send_idle_s: float = Field(default=30.0, gt=0, le=3600)
    # Replies (issue 25): how far an out-of-office reply pushes the next touch.
    reply_out_of_office_days: int = Field(default=3, ge=1, le=90)
    reply_return_max_days: int = Field(default=90, ge=1, le=365)

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_database_url(value.strip())

    @field_validator("postmark_api_url", "phantombuster_api_url", "lemlist_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value) < 10:
            raise ValueError("must be an http(s) URL, e.g. https://api.postmarkapp.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _retry_bounds(self) -> Settings:
        if self.send_retry_max_s < self.send_retry_base_s:
            raise ValueError(
                "CAMPAIGN_SEND_RETRY_MAX_S must be at least CAMPAIGN_SEND_RETRY_BASE_S"
            )
        return self

    @model_validator(mode="after")
    def _write_bodies_admit_queries(self) -> Settings:
        if self.graphql_write_max_bytes is not None and (
            self.graphql_write_max_bytes < self.graphql_max_bytes
        ):
            raise ValueError(
                "CAMPAIGN_GRAPHQL_WRITE_MAX_BYTES must be at least CAMPAIGN_GRAPHQL_MAX_BYTES"
            )
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        return ",".join(parse_forwarded_allow_ips(value))

    @field_validator("metrics_bind")
    @classmethod
    def _check_metrics_bind(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_bind(value)
        return value.strip()

    @model_validator(mode="after")
    def _production_needs_database(self) -> Settings:
        if self.environment is Environment.PRODUCTION and self.database_url is None:
            raise ValueError(
                "DATABASE_URL must be set in production (embedded PostgreSQL is for development)"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def introspection_enabled(self) -> bool:
        """On in development; off in production unless CAMPAIGN_INTROSPECTION=true."""
        return self.introspection if self.introspection is not None else not self.is_production

    def graphql_body_limit(self, can_write: bool) -> int:
        """The largest /graphql body: a query needs little, but a key that may write may send
        the largest bulkEnroll (CAMPAIGN_GRAPHQL_WRITE_MAX_BYTES, else derived from the contact
        and metadata limits, on top of the query allowance). The contacts of one request are
        capped (schema/extensions/limits.py), which bounds the work such a body causes."""
        if not can_write:
            return self.graphql_max_bytes
        if self.graphql_write_max_bytes is not None:
            return self.graphql_write_max_bytes
        return self.graphql_max_bytes + largest_contact_list_bytes()

    @property
    def embedded_pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()


def load_settings() -> Settings:
    """Read the environment, turning pydantic's report into one readable line."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            where = name if name in ("", "DATABASE_URL") else f"CAMPAIGN_{name.upper()}"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where or 'settings'}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
