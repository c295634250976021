"""A real server for the fuzz tests: uvicorn on a free port, in a thread, on the test database.

Its rate limits are the shared test settings' (raised: the fuzz sends hundreds of requests
from one address and key) and every webhook secret is configured, so the generated requests
get past authentication and reach the parsers and the database. The demo data is seeded, so
generated requests can name rows that exist and get past "not found" to the deeper checks.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import text

from app.cli.seed import seed
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from tests.conftest import empty_tables

LEMLIST_SECRET = "fuzz-lemlist-secret"
PHANTOMBUSTER_SECRET = "fuzz-phantombuster-secret"
POSTMARK_USER, POSTMARK_PASSWORD = "fuzz-postmark", "fuzz-postmark-password"


@dataclass(frozen=True)
class LiveServer:
    url: str
    api_key: str
    ids: tuple[str, ...] = ()
    """Ids of the seeded rows (templates, steps, instances, enrollments, events)."""
    enrollment_ids: tuple[str, ...] = ()

    def credentials(self, path: str) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and query parameters that authenticate a request to ``path``."""
        if path.endswith("/lemlist"):
            return {}, {"secret": LEMLIST_SECRET}
        if path.endswith("/phantombuster"):
            return {}, {"secret": PHANTOMBUSTER_SECRET}
        if path.endswith("/postmark"):
            basic = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
            return {"authorization": f"Basic {basic}"}, {}
        return {"authorization": f"Bearer {self.api_key}"}, {}


def _fuzz_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "lemlist_webhook_secret": SecretStr(LEMLIST_SECRET),
            "phantombuster_webhook_secret": SecretStr(PHANTOMBUSTER_SECRET),
            "postmark_webhook_user": POSTMARK_USER,
            "postmark_webhook_password": SecretStr(POSTMARK_PASSWORD),
        }
    )


SEEDED_IDS = """
SELECT id::text FROM campaign_templates UNION ALL SELECT id::text FROM email_steps
UNION ALL SELECT id::text FROM linkedin_steps UNION ALL SELECT id::text FROM campaign_instances
UNION ALL SELECT id::text FROM enrollments UNION ALL SELECT id::text FROM campaign_events
"""


async def _admin_key_and_seed(settings: Settings) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """An admin key, and the ids of the seeded rows (all, then the enrollments')."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            key = await create_api_key(session, "fuzz", frozenset({Scope.ADMIN}))
            await seed(session)
            ids = (await session.execute(text(SEEDED_IDS))).scalars().all()
            enrollments = (
                (await session.execute(text("SELECT id::text FROM enrollments ORDER BY id")))
                .scalars()
                .all()
            )
            return key, tuple(sorted(ids)), tuple(enrollments)
    finally:
        await engine.dispose()


async def _truncate(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await empty_tables(connection)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    fuzz_settings = _fuzz_settings(settings)
    api_key, ids, enrollment_ids = asyncio.run(_admin_key_and_seed(fuzz_settings))
    config = uvicorn.Config(
        create_app(fuzz_settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fuzz-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fuzz server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", api_key, ids, enrollment_ids)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        asyncio.run(_truncate(fuzz_settings))
