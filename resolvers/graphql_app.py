"""The /graphql endpoint: GraphiQL for browsers, API-key authentication, then Strawberry."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema

from app.graphiql import render_graphiql_page
from app.http_errors import UNAUTHENTICATED_MESSAGE, json_error
from app.request_auth import principal_for
from resolvers.context import Context
from resolvers.loaders import RequestDatabase


class _StrawberryView(GraphQL[Context, None]):
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
                response = HTMLResponse(render_graphiql_page())
            else:
                response = json_error(
                    405, "METHOD_NOT_ALLOWED", "send GraphQL operations with POST"
                )
            await response(scope, receive, send)
            return
        principal = await principal_for(request, request.app.state.engine)
        if principal is None:
            response = json_error(
                401,
                "UNAUTHENTICATED",
                UNAUTHENTICATED_MESSAGE,
                headers={"WWW-Authenticate": 'Bearer realm="campaign-api"'},
            )
            await response(scope, receive, send)
            return
        db = RequestDatabase(request.app.state.engine)
        scope.setdefault("state", {}).update(principal=principal, db=db)
        try:
            await self._view(scope, receive, send)
        finally:
            await db.close()
