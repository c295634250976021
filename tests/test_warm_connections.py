"""After a burst of concurrent reads, each sequential read sends PostgreSQL only its own
statements: no type introspection, no ``jit`` round trip on a connection's first use.

Counted from outside the application, on the wire: the application talks to PostgreSQL
through a loopback proxy that counts the statements the client executes (simple ``Query``
and extended ``Execute`` messages), whoever sent them (SQLAlchemy, our reads, or asyncpg's
own introspection, which the application's statement observer never sees).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from app.settings import Settings
from app.web.asgi import create_app
from testkit.examples import example
from testkit.factories import Shape, build_dataset
from tests.graphql_client import gql

DASHBOARD = example("dashboard.graphql")
INSTANCE = """query($id: ID!) { instance(id: $id) { id status enrollments(first: 3) {
  nodes { id status events(first: 2) { nodes { id eventType channel provider } } } } } }"""
_SSL_OR_GSS_REQUEST = {80877103, 80877104}


class CountingProxy:
    """Forwards connections to PostgreSQL and counts the statements clients execute.

    It refuses TLS (answers an SSLRequest with ``N``, as a server without TLS does) so that
    the client's messages stay readable."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.executed = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:  # startup phase: messages without a type byte
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                if struct.unpack("!I", body[:4])[0] not in _SSL_OR_GSS_REQUEST:
                    break
                writer.write(b"N")
                await writer.drain()
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.writers.add(up_writer)
        up_writer.write(struct.pack("!I", length) + body)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            while True:
                kind = await reader.readexactly(1)
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                payload = await reader.readexactly(length - 4)
                if kind in (b"Q", b"E"):
                    self.executed += 1
                up_writer.write(kind + struct.pack("!I", length) + payload)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            back.cancel()
            up_writer.close()
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def proxied_app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    url = make_url(settings.database_url)
    proxy = CountingProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    application = create_app(settings.model_copy(update={"database_url": proxied}))
    application.state.proxy = proxy
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        await proxy.stop()


async def _data(engine: AsyncEngine) -> str:
    async with engine.begin() as connection:
        await build_dataset(connection, Shape(3, 2, 4, 2))
        return str(await connection.scalar(text("SELECT id::text FROM campaign_instances")))


async def test_sequential_reads_after_a_burst_cost_only_their_statements(
    proxied_app: Starlette, engine: AsyncEngine, read_key: str
) -> None:
    instance_id = await _data(engine)
    proxy: CountingProxy = proxied_app.state.proxy
    transport = httpx.ASGITransport(app=proxied_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def read(query: str, variables: dict[str, Any] | None = None) -> tuple[int, int]:
            """(statements on the wire, statements the application itself reported)."""
            before = proxy.executed
            with recording(proxied_app.state.engine) as reported:
                body = await gql(client, read_key, query, variables)
            assert "errors" not in body, body
            return proxy.executed - before, len(reported)

        await read(DASHBOARD)  # the key is looked up and cached
        # A burst: more requests at once than connections the pool keeps, of two queries,
        # so the pool fills with connections that served one query or the other.
        size = proxied_app.state.settings.pool_size
        burst = [read(INSTANCE, {"id": instance_id}) for _ in range(size)]
        burst += [read(DASHBOARD) for _ in range(size)]
        await asyncio.gather(*burst)
        for _ in range(2 * size):
            on_wire, reported = await read(DASHBOARD)
            # The one statement more is the pool's ping (``SELECT 1``) on checkout.
            assert on_wire == reported + 1, (on_wire, reported)
