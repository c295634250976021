"""The ASGI application: GraphQL, the health probes and GraphiQL's static assets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app import log_redaction
from app.db import create_engine, create_sessionmaker
from app.migrate import head_revision
from app.rate_limit import RateLimiter
from app.request_context import RequestIdMiddleware
from app.services.ingest_batcher import IngestBatcher
from app.settings import Settings, get_settings
from app.webhooks.routes import routes as webhook_routes

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def healthz(request: Request) -> Response:
    """The process is up; says nothing of the database on purpose."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and its schema is at the migrations' head."""
    expected = head_revision()
    try:
        async with request.app.state.engine.connect() as connection:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except (SQLAlchemyError, OSError):
        return JSONResponse(
            {"status": "unavailable", "reason": "the database does not answer"},
            status_code=503,
            headers={"Retry-After": "5"},
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
    log_redaction.install()
    # The composition root: the one place in app/ that reaches up to the GraphQL layer.
    from resolvers.graphql_app import GraphQLEndpoint
    from schema import build_schema

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.ingest_batcher = IngestBatcher(app.state.sessionmaker)
        app.state.rate_limiter = RateLimiter(settings)
        try:
            yield
        finally:
            await app.state.ingest_batcher.close()
            await engine.dispose()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(
                "/graphql",
                GraphQLEndpoint(build_schema(settings, fast_execution=settings.fast_execution)),
                methods=["GET", "POST"],
            ),
            *webhook_routes,
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
