"""The /graphql endpoint: GraphiQL for browsers, API-key authentication, then Strawberry."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry import UNSET
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema

from app.domain import enums
from app.domain.text import encodable
from app.security.api_keys import Principal
from app.services.validation import unencodable_message
from app.web.auth import require_principal
from app.web.body import parse_json, read_body
from app.web.errors import Refused, json_error
from app.web.graphiql import graphiql_page
from app.web.json_body import encode_response
from app.web.limits import limiter, spend
from resolvers.context import Context
from resolvers.loaders import RequestDatabase


class _StrawberryView(GraphQL[Context, None]):
    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry refuses some requests (an unknown operationName…) in plain text: JSON here."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as error:
            return json_error(error.status_code, "INVALID_REQUEST", error.reason)

    def encode_json(self, data: object) -> bytes:
        """The same bytes as Strawberry's ``json.dumps``, written by orjson (app.web.json_body)."""
        return encode_response(data)

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.app.state
        return Context(
            settings=state.settings,
            engine=state.engine,
            sessionmaker=state.sessionmaker,
            principal=request.scope["state"]["principal"],
            db=request.scope["state"]["db"],
            request_state=request.scope["state"],
        )


class GraphQLEndpoint:
    """GET from a browser shows GraphiQL; every operation needs a valid API key (else 401)."""

    def __init__(self, schema: BaseSchema) -> None:
        self._view = _StrawberryView(schema, graphql_ide=None, allow_queries_via_get=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response
        if request.method == "GET":
            if "text/html" in request.headers.get("accept", ""):
                response = graphiql_page()
            else:
                response = json_error(
                    405, "METHOD_NOT_ALLOWED", "send GraphQL operations with POST"
                )
            await response(scope, receive, send)
            return
        try:
            principal, body = await self._admit(request)
        except Refused as refusal:
            await refusal.response()(scope, receive, send)
            return
        db = RequestDatabase(request.app.state.engine)
        scope.setdefault("state", {}).update(principal=principal, db=db)
        try:
            await self._view(scope, _replay(body, receive), send)
        finally:
            await db.close()

    async def _admit(self, request: Request) -> tuple[Principal, bytes]:
        """Rate limits, authentication and the body's limits, cheapest first; raises Refused."""
        principal = await require_principal(request)
        await spend(limiter(request).requests, principal.key_id)
        limit = request.app.state.settings.graphql_body_limit(principal.allows(enums.Scope.WRITE))
        body = await read_body(request, limit)
        _check_operation(parse_json(body))
        return principal, body


def _check_operation(payload: Any) -> None:
    """The request's shape, refused as JSON here rather than as Strawberry's plain text."""
    if not isinstance(payload, dict):
        raise Refused(400, "INVALID_REQUEST", "the body must be one JSON object (no batches)")
    if not isinstance(payload.get("query"), str) or not payload["query"].strip():
        raise Refused(400, "INVALID_REQUEST", "'query' must be a non-empty string")
    if not isinstance(payload.get("variables"), dict | None):
        raise Refused(400, "INVALID_REQUEST", "'variables' must be an object or null")
    if not isinstance(payload.get("operationName"), str | None):
        raise Refused(400, "INVALID_REQUEST", "'operationName' must be a string or null")
    if payload.get("operationName") is not None and not encodable(payload["operationName"]):
        # Echoed back when no operation has that name: it must be text a response can carry.
        message = unencodable_message(payload["operationName"])
        raise Refused(400, "INVALID_REQUEST", f"'operationName' {message}")
    if not isinstance(payload.get("extensions"), dict | None):
        raise Refused(400, "INVALID_REQUEST", "'extensions' must be an object or null")


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the body already read to Strawberry, then pass on what the server sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
