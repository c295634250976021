"""``GET /metrics`` for admin keys (the key-less listener is ``app.observability.listener``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.enums import Scope
from app.observability import metrics
from app.web.auth import require_principal
from app.web.errors import Refused, json_error


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format; 401 without a valid key (counted as a failed
    authentication, like everywhere), 403 without the admin scope."""
    try:
        principal = await require_principal(request)
    except Refused as refusal:
        return refusal.response()
    request.state.principal = principal
    if not principal.allows(Scope.ADMIN):
        return json_error(403, "FORBIDDEN", "reading metrics needs an API key with 'admin' scope")
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
