"""Postmark's sending API: ``POST /email`` for one message, ``POST /email/batch`` for up to 500
(one answer per message), and the outbound message search that tells whether a message whose
answer was lost was taken (by the ``dispatch_id`` we put in its ``Metadata``).

The server token travels in ``X-Postmark-Server-Token`` and nowhere else: it is never logged
and never part of an error we keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from app.domain.enums import Provider
from app.providers.http import (
    JSON_CONTENT,
    body_of,
    json_body,
    short,
    timed,
    transient_status,
    transport_failure,
)
from app.providers.outbound import CannotAsk, Kind, Outcome, Touch

BATCH_SIZE = 500
RECIPIENT_ERRORS = frozenset({300, 406})
"""Postmark ErrorCodes that name the message itself: 300 invalid email request (a malformed
recipient), 406 inactive recipient (bounced or unsubscribed at Postmark). Other codes are
about the account or the request and are retried (an operator fixes the configuration)."""


def message(touch: Touch) -> dict[str, Any]:
    sender = touch.sender
    from_address = sender.from_email or ""
    if sender.from_name:
        from_address = f'"{sender.from_name.replace(chr(34), "")}" <{from_address}>'
    return {
        "From": from_address,
        "To": touch.address,
        "Subject": touch.subject or "",
        "TextBody": touch.body,
        "MessageStream": sender.message_stream,
        "TrackOpens": True,
        "Metadata": {
            "enrollment_id": str(touch.enrollment_id),
            "step_number": str(touch.step_number),
            "dispatch_id": str(touch.dispatch_id),
        },
    }


def _answer(item: Any) -> Outcome:
    """One message's answer: ErrorCode 0 with a MessageID is sent."""
    if not isinstance(item, dict):
        return Outcome(Kind.UNCERTAIN, error_code="BAD_ANSWER", error="unreadable answer")
    code = item.get("ErrorCode")
    if code == 0 and item.get("MessageID"):
        return Outcome.sent(str(item["MessageID"]))
    text = short(item.get("Message") or "")
    if code in RECIPIENT_ERRORS:
        return Outcome(Kind.FAILED, error_code=str(code), error=text)
    return Outcome(Kind.RETRY, error_code=str(code), error=text)


class PostmarkClient:
    provider = Provider.POSTMARK
    batch_size = BATCH_SIZE
    reconcilable = True
    idempotent = False

    def __init__(self, http: httpx.AsyncClient, base_url: str, server_token: str) -> None:
        self._http = http
        self._base = base_url
        self._headers = {"X-Postmark-Server-Token": server_token}
        self._sending = self._headers | JSON_CONTENT

    async def send(self, touches: Sequence[Touch]) -> list[Outcome]:
        single = len(touches) == 1
        path = "/email" if single else "/email/batch"
        payload: Any = message(touches[0]) if single else [message(t) for t in touches]
        try:
            response = await timed(
                "postmark",
                path,
                lambda: self._http.post(
                    self._base + path, content=json_body(payload), headers=self._sending
                ),
            )
        except httpx.HTTPError as exc:
            return [transport_failure(exc)] * len(touches)
        transient = transient_status(response)
        if transient is not None:
            return [transient] * len(touches)
        body = body_of(response)
        if single:
            return [_answer(body) if response.status_code in (200, 422) else _refused(response)]
        if response.status_code != 200 or not isinstance(body, list) or len(body) != len(touches):
            return [_refused(response)] * len(touches)
        return [_answer(item) for item in body]

    async def find(self, touch: Touch) -> str | None:
        """Search the outbound messages by our dispatch id (Postmark's ``metadata_`` filter)."""
        try:
            response = await timed(
                "postmark",
                "/messages/outbound",
                lambda: self._http.get(
                    self._base + "/messages/outbound",
                    params={
                        "count": 1,
                        "offset": 0,
                        "metadata_dispatch_id": str(touch.dispatch_id),
                    },
                    headers=self._headers,
                ),
            )
        except httpx.HTTPError as exc:
            raise CannotAsk(type(exc).__name__) from None
        body = body_of(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise CannotAsk(f"HTTP {response.status_code}")
        messages = body.get("Messages")
        if not isinstance(messages, list) or not messages:
            return None
        found = messages[0].get("MessageID") if isinstance(messages[0], dict) else None
        return str(found) if found else None


def _refused(response: httpx.Response) -> Outcome:
    """A whole-request refusal (401 bad token, 422 on the batch itself): not the message's
    fault, so it is retried while an operator fixes the configuration."""
    body = body_of(response)
    code = body.get("ErrorCode") if isinstance(body, dict) else None
    text = body.get("Message") if isinstance(body, dict) else response.text
    return Outcome(
        Kind.RETRY, error_code=str(code or f"HTTP {response.status_code}"), error=short(text)
    )
