"""The one ASGI layer around every HTTP request: its id, its SQL count, its access line and
metrics, and the 503 for a lost database.

These were three nested middlewares, each wrapping ``send`` and costing a coroutine per
request: an eighth of the webhook shim's CPU per event (measured with ``bench.ingest``). The
rules stay in their modules (``request_context``, ``sql_observer``, ``access_log``,
``unavailable``); this layer only runs them in order.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.errors import is_database_unavailable, is_schema_missing
from app.db.outage import unwatch_outage, watch_outage
from app.observability.request_context import bind_request_id, choose_request_id, unbind_request_id
from app.observability.sql_observer import start_counting, stop_counting
from app.web.access_log import record_request
from app.web.unavailable import log_unavailable, unavailable_response


class RequestEnvelope:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        began = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped the application
        started = replaced = False
        outage, outage_token = watch_outage()
        statements, count_token = start_counting()
        id_token = bind_request_id(request_id)

        async def send_out(message: Message) -> None:
            """To the client, with the request id; the status is what the access line says."""
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        async def send_or_replace(message: Message) -> None:
            """The application's response, or the 503 when a layer noted a lost database."""
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                if outage.failure is not None:
                    replaced = True
                    log_unavailable(outage.failure)
                    await unavailable_response(outage.failure)(scope, receive, send_out)
                    return
            if not replaced:
                await send_out(message)

        try:
            await self.app(scope, receive, send_or_replace)
        except Exception as exc:
            if started or not (is_database_unavailable(exc) or is_schema_missing(exc)):
                raise
            log_unavailable(exc)
            await unavailable_response(exc)(scope, receive, send_out)
        finally:
            stop_counting(count_token)
            unwatch_outage(outage_token)
            record_request(scope, state, status, time.perf_counter() - began, statements.value)
            unbind_request_id(id_token)
