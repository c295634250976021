"""JSON error responses shared by every HTTP route: ``{"error": CODE, "message": TEXT}``."""

from __future__ import annotations

from starlette.responses import JSONResponse


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


UNAUTHENTICATED_MESSAGE = (
    "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; "
    "create one with 'campaign-api api-key create --name NAME --scopes read,write'"
)
