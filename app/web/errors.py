"""JSON error responses shared by every HTTP route: ``{"error": CODE, "message": TEXT}``."""

from __future__ import annotations

from starlette.responses import JSONResponse


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class Refused(Exception):
    """A request answered with an error status before anything was done for it."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return json_error(self.status, self.code, self.message, self.headers)


_HOW_TO_AUTHENTICATE = (
    "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; "
    "create one with 'campaign-api api-key create --name NAME --scopes read,write'"
)
NO_KEY_MESSAGE = "no API key sent: " + _HOW_TO_AUTHENTICATE
UNRECOGNISED_KEY_MESSAGE = (
    "API key not recognised (wrong, revoked or expired); "
    "send a valid key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
)
