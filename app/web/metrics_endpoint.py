"""``GET /metrics`` for admin keys (the key-less listener is ``app.observability.listener``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.enums import Scope
from app.observability import metrics
from app.web.auth import principal_for
from app.web.errors import UNAUTHENTICATED_MESSAGE, json_error


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format; 401 without a valid key, 403 without the admin scope."""
    principal = await principal_for(request)
    if principal is None:
        return json_error(
            401,
            "UNAUTHENTICATED",
            UNAUTHENTICATED_MESSAGE,
            headers={"WWW-Authenticate": 'Bearer realm="campaign-api"'},
        )
    request.state.principal = principal
    if not principal.allows(Scope.ADMIN):
        return json_error(403, "FORBIDDEN", "reading metrics needs an API key with 'admin' scope")
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
