"""The webhook endpoints: authenticate, parse, translate, ingest in one transaction, count.

A 2xx answer is sent only after the request's events are committed; a refused request
stores nothing of itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from app.db.engine import run_in_transaction
from app.domain.enums import Scope
from app.domain.errors import DomainError
from app.observability import metrics
from app.observability.logs import get_logger
from app.providers import generic, lemlist, phantombuster, postmark
from app.providers.common import PayloadError, Translation
from app.services.ingestion.events import check_event
from app.services.replies import record_provider_classifications
from app.services.validation import Problems, describe_path, unencodable, unencodable_message
from app.settings import Settings
from app.web.auth import principal_for, unauthenticated
from app.web.body import SURROGATE_ESCAPE, parse_json, read_body, refuse_deep_nesting
from app.web.errors import Refused
from app.web.limits import failed_authentication, limiter, spend
from app.web.webhooks_openapi import OPENAPI

log = get_logger("webhooks")

NOT_CONFIGURED = "NOT_CONFIGURED"

Translator = Callable[[Any, datetime], Translation]
Authenticator = Callable[[Request], Awaitable[Hashable]]
"""Checks a request's credentials (Refused 401/403) and says whose they are, for rate limits."""


def _secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; nothing given matches nothing."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _configured(secret: SecretStr | str | None, provider: str, variables: str) -> str:
    """The configured secret; refused, saying so, while there is none: no request could
    pass, and "wrong secret" would send whoever set up the provider looking at its side."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        raise Refused(401, NOT_CONFIGURED, f"no secret configured for {provider}: set {variables}")
    return value


async def _authenticate_key(request: Request) -> Hashable:
    principal = await principal_for(request)
    if principal is None:
        raise unauthenticated(request)
    request.state.principal = principal  # for the access log: the key's name, never the key
    if not principal.allows(Scope.WEBHOOKS):
        raise Refused(403, "FORBIDDEN", "this API key lacks the 'webhooks' scope")
    return ("api-key", principal.key_id)


def _query_secret(provider: str, setting: str) -> Authenticator:
    async def check(request: Request) -> Hashable:
        settings: Settings = request.app.state.settings
        expected = _configured(getattr(settings, setting), provider, f"CAMPAIGN_{setting.upper()}")
        if not _secret_matches(request.query_params.get("secret"), expected):
            raise Refused(401, "UNAUTHENTICATED", "missing or wrong 'secret' query parameter")
        return ("secret", setting)

    return check


async def _postmark_basic(request: Request) -> Hashable:
    settings: Settings = request.app.state.settings
    variables = "CAMPAIGN_POSTMARK_WEBHOOK_USER and CAMPAIGN_POSTMARK_WEBHOOK_PASSWORD"
    user = _configured(settings.postmark_webhook_user, "postmark", variables)
    password = _configured(settings.postmark_webhook_password, "postmark", variables)
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    given_user = given_password = ""
    if scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            given_user, _, given_password = (
                base64.b64decode(encoded, validate=True).decode().partition(":")
            )
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    if not user_ok or not _secret_matches(given_password, password):
        raise Refused(401, "UNAUTHENTICATED", "missing or wrong HTTP Basic credentials")
    return ("secret", "postmark_webhook_password")


async def _store(request: Request, translation: Translation) -> dict[str, int]:
    problems = Problems()
    many = len(translation.events) > 1
    events = [
        check_event(problems, event, (f"events[{i}]",) if many else ())
        for i, event in enumerate(translation.events)
    ]
    if problems.errors:
        raise Refused(400, "INVALID_EVENT", "; ".join(_describe(e) for e in problems.errors[:20]))
    counts = {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": translation.ignored}
    if events:
        result = await request.app.state.ingest_batcher.submit(events)
        counts.update(
            accepted=result.accepted, duplicates=result.duplicates, orphaned=result.orphaned
        )
    if translation.classifications:
        classified = await run_in_transaction(
            request.app.state.sessionmaker,
            lambda s: record_provider_classifications(s, translation.classifications),
        )
        counts["accepted"] += classified.accepted
        counts["duplicates"] += classified.duplicates
        counts["ignored"] += classified.unresolved
    return counts


def _describe(error: DomainError) -> str:
    where = error.field[0] + ": " if error.field and error.field[0].startswith("events[") else ""
    return where + error.message


def _count_events(provider: str, counts: dict[str, int]) -> None:
    """Each event in exactly one outcome: the answer's ``accepted`` includes the orphans."""
    outcomes = {
        "accepted": counts["accepted"] - counts["orphaned"],
        "orphaned": counts["orphaned"],
        "duplicate": counts["duplicates"],
        "ignored": counts["ignored"],
    }
    for outcome, number in outcomes.items():
        if number:
            metrics.labelled(metrics.webhook_events_total, provider, outcome).inc(number)


def _refuse_unencodable(payload: Any) -> None:
    """A lone surrogate anywhere in the body is refused before any part of it is used:
    PostgreSQL cannot store one, and a provider never sends one on purpose."""
    found = unencodable(payload)
    if found is not None:
        path, text = found
        where = f"field '{describe_path(path)}'" if path else "the body"
        raise Refused(400, "INVALID_PAYLOAD", f"{where} {unencodable_message(text)}")


async def _admit(request: Request, authenticate: Authenticator) -> None:
    """Failed authentications count against the address, the rest against the credential."""
    try:
        identity = await authenticate(request)
    except Refused as refusal:
        # An endpoint we did not configure is no client's failure: it locks nobody out.
        if refusal.status == 401 and refusal.code != NOT_CONFIGURED:
            raise await failed_authentication(request, refusal) from None
        raise
    await spend(limiter(request).webhooks, identity)


class WebhookEndpoint:
    """One provider's endpoint, as a plain ASGI app: providers call it thousands of times a
    second, and Starlette's request-response wrapper and ``JSONResponse`` are per-request work
    it does not need. Refusals, the cold path, still answer through ``Refused``."""

    def __init__(self, provider: str, authenticate: Authenticator, translate: Translator):
        self.provider, self._authenticate, self._translate = provider, authenticate, translate

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await _admit(request, self._authenticate)
            body = await read_body(request, request.app.state.settings.webhook_max_bytes)
            payload = parse_json(body)
            refuse_deep_nesting(body, payload)
            if SURROGATE_ESCAPE.search(body):
                _refuse_unencodable(payload)
            try:
                translation = self._translate(payload, datetime.now(UTC))
            except PayloadError as exc:
                raise Refused(400, "INVALID_PAYLOAD", str(exc)) from None
            counts = await _store(request, translation)
        except Refused as refusal:
            log.warning(
                "webhook_refused",
                provider=self.provider,
                status=refusal.status,
                reason=refusal.code,
                detail=refusal.message,
            )
            metrics.labelled(metrics.webhook_events_total, self.provider, "refused").inc()
            await refusal.response()(scope, receive, send)
            return
        _count_events(self.provider, counts)
        body = json.dumps(counts, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


routes = [
    Route(
        "/webhooks/events",
        WebhookEndpoint("api", _authenticate_key, generic.translate),
        methods=["POST"],
    ),
    Route(
        "/webhooks/lemlist",
        WebhookEndpoint(
            "lemlist", _query_secret("lemlist", "lemlist_webhook_secret"), lemlist.translate
        ),
        methods=["POST"],
    ),
    Route(
        "/webhooks/postmark",
        WebhookEndpoint("postmark", _postmark_basic, postmark.translate),
        methods=["POST"],
    ),
    Route(
        "/webhooks/phantombuster",
        WebhookEndpoint(
            "phantombuster",
            _query_secret("phantombuster", "phantombuster_webhook_secret"),
            phantombuster.translate,
        ),
        methods=["POST"],
    ),
    Route("/webhooks/openapi.json", openapi, methods=["GET"]),
]
