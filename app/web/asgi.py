"""The ASGI application: GraphQL, webhooks, health probes, GraphiQL and its assets, an index."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app.db.engine import create_engine, create_sessionmaker
from app.db.errors import is_database_unavailable
from app.db.migrate import head_revision
from app.db.notifications import Notifications
from app.observability import metrics
from app.observability.listener import metrics_listener
from app.observability.logs import configure_logging
from app.observability.sql_observer import instrument_engine
from app.security.key_cache import KEY_CHANGES_CHANNEL, KeyCache, follow_key_changes
from app.security.key_use import KeyUseRecorder
from app.security.rate_limit import RateLimiter
from app.services.ingestion.batcher import IngestBatcher
from app.services.live.activity import CHANNEL as ACTIVITY_CHANNEL
from app.services.live.activity import prune_periodically
from app.services.live.holds import KeyHolds
from app.services.live.hub import Hub
from app.settings import Settings, get_settings
from app.web.envelope import RequestEnvelope
from app.web.graphiql import ASSETS as GRAPHIQL_ASSETS
from app.web.graphiql import asset_endpoint
from app.web.metrics_endpoint import metrics_endpoint
from app.web.unavailable import RETRY_AFTER_S
from app.web.webhooks import routes as webhook_routes
from app.web.worker_sockets import follow_supervisor

STATIC_DIR = Path(__file__).resolve().parent / "static"


INDEX = {
    "service": "campaign-api",
    "graphql": "/graphql",
    "graphiql": "/graphql",
    "authentication": (
        "every GraphQL operation needs an API key: 'Authorization: Bearer <key>' or "
        "'X-API-Key: <key>'"
    ),
    "docs": {
        "schema": "the Docs tab of GraphiQL (open /graphql in a browser)",
        "webhooks": "/webhooks/openapi.json",
        "service": "README.md in the service's repository",
    },
    "health": "/healthz",
    "ready": "/readyz",
}


async def index(request: Request) -> Response:
    """Where to go from ``/``. No key needed, like /healthz: it names public paths only and
    says nothing of the data or the deployment."""
    return JSONResponse(INDEX)


async def healthz(request: Request) -> Response:
    """The process is up; says nothing of the database on purpose."""
    return JSONResponse({"status": "ok"})


async def _schema_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision; None on a database never migrated."""
    async with engine.connect() as connection:
        if not await connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
            return None
        revision: str | None = (
            await connection.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one_or_none()
        return revision


async def readyz(request: Request) -> Response:
    """Ready when the database answers and its schema is at the migrations' head."""
    expected = head_revision()
    try:
        # A probe must answer within its own timeout: bound the wait for a pool slot and the
        # connect together, not one after the other.
        async with asyncio.timeout(request.app.state.settings.pool_timeout_s):
            current = await _schema_revision(request.app.state.engine)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return JSONResponse(
            {"status": "unavailable", "reason": "the database does not answer"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    if current != expected:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": f"database schema is at {current or 'no revision'}, expected {expected}",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "revision": current})


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the application; the engine is created in the lifespan, inside the server's loop."""
    settings = settings or get_settings()
    configure_logging(settings)
    # The composition root: the one place in app/ that reaches up to the GraphQL layer.
    from app.web.graphql import GraphQLEndpoint
    from app.web.live import GraphQLWebSocket
    from resolvers.fast_execution import on_fallback
    from resolvers.live import hub_load, hub_tail
    from schema import build_schema

    on_fallback(metrics.fastpath_fell_back)
    schema = build_schema(settings, fast_execution=settings.fast_execution)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.ingest_batcher = IngestBatcher(engine)
        instrument_engine(engine, settings.slow_sql_ms)
        metrics.watch_pool(engine, settings.pool_size + settings.max_overflow)
        app.state.rate_limiter = RateLimiter(settings)
        app.state.key_cache = KeyCache(settings.auth_cache_s)
        app.state.key_use = KeyUseRecorder(settings, app.state.key_cache)
        app.state.key_use.start()
        holds = KeyHolds(engine)
        hub = app.state.live_hub = Hub(
            hub_load(engine, settings.live_batch_limit),
            hub_tail(engine),
            queue_size=settings.live_queue_size,
            per_key=settings.live_subscriptions_per_key,
            holds=holds,
        )
        # The process's one LISTEN connection: every subscriber registers before it starts.
        notifications = app.state.notifications = Notifications(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False), "api"
        )
        notifications.on(ACTIVITY_CHANNEL, hub.notified)
        follow_key_changes(app.state.key_cache, notifications)
        notifications.on(KEY_CHANGES_CHANNEL, hub.key_revoked)
        notifications.on_connected(hub.reconnected)
        holds.start()
        hub.start()
        notifications.start()
        pruning = asyncio.create_task(
            prune_periodically(engine, timedelta(hours=settings.live_activity_retention_h))
        )
        try:
            with metrics_listener(settings.metrics_bind):
                yield
        finally:
            pruning.cancel()
            await notifications.close()
            await hub.close()
            await holds.close()
            await app.state.key_use.close()
            await app.state.rate_limiter.close()
            metrics.unwatch_pool(engine)
            await app.state.ingest_batcher.close()
            await engine.dispose()

    return Starlette(
        routes=[
            *webhook_routes,
            Route("/", index, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/graphql", GraphQLEndpoint(schema), methods=["GET", "POST"]),
            WebSocketRoute("/graphql", GraphQLWebSocket(schema, settings)),
            Route(f"{GRAPHIQL_ASSETS}/{{name}}", asset_endpoint, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[Middleware(RequestEnvelope)],
        lifespan=lifespan,
    )


def create_served_app() -> Starlette:
    """``create_app`` for a long-running server process, with start-up objects frozen.

    The schema, the models and the libraries make hundreds of thousands of long-lived objects;
    every full collection would walk them all (75 ms pauses under load, seen in the ingestion
    benchmark). Frozen, collections only look at what requests create.

    And they look less often: a dashboard holds some 20,000 objects while it is built (rows,
    the answer's dicts), all freed when it is sent. At the default threshold (700 new objects)
    the collector ran about 30 times per dashboard and walked most of them two or three times
    over, 4 ms of its 50; at 50,000 it rarely runs while a request is in flight, and what
    requests free they free without it. A worker of ``serve --workers N`` also stops when its
    supervisor dies.
    """
    follow_supervisor()
    app = create_app()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    return app
