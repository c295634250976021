"""The OpenAPI 3.1 description of the webhook shim, served at /webhooks/openapi.json."""

from __future__ import annotations

from typing import Any

from app.domain.enums import Channel, EventType, Provider
from app.providers import lemlist
from app.providers.generic import MAX_EVENTS

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_COUNTS = {
    "type": "object",
    "required": ["accepted", "duplicates", "orphaned", "ignored"],
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("accepted", "duplicates", "orphaned", "ignored")
    },
}
_GENERIC_EVENT = {
    "type": "object",
    "required": ["enrollment_id", "event_type"],
    "properties": {
        "enrollment_id": {"type": "string", "description": "our enrollment id"},
        "event_type": {
            "type": "string",
            "description": "one of "
            + ", ".join(t.value for t in EventType)
            + "; another value is ignored",
        },
        "occurred_at": {"type": "string", "format": "date-time"},
        "channel": {"type": "string", "enum": [c.value for c in Channel]},
        "provider": {
            "type": "string",
            "enum": [Provider.API.value],
            "description": "a provider with an adapter posts to its own endpoint",
        },
        "provider_event_id": {"type": "string", "maxLength": 255},
        "step_number": {"type": "integer", "minimum": 1},
        "metadata": {"type": "object"},
    },
}
_LEMLIST = {
    "type": "object",
    "required": ["_id", "type"],
    "properties": {
        "_id": {"type": "string", "description": "the activity's id: a repeat is stored once"},
        "type": {
            "type": "string",
            "description": "an activity stored as an event: "
            + ", ".join(lemlist.EVENTS)
            + "; a classification of the enrollment's replies (their sentiment): "
            + ", ".join(f"{k} ({v.value})" for k, v in lemlist.SENTIMENTS.items())
            + "; another type is answered 200 and counted as ignored, as is a classification"
            " whose enrollmentId names no enrollment",
        },
        "createdAt": {
            "type": "string",
            "format": "date-time",
            "description": "when it happened; for a classification, the latest one wins",
        },
        "sequenceStep": {"type": "integer", "minimum": 0},
        "enrollmentId": {"type": "string"},
        "campaignId": {"type": "string"},
        "campaignName": {"type": "string"},
        "sequenceId": {"type": "string"},
        "emailId": {"type": "string"},
        "leadId": {"type": "string"},
        "leadEmail": {"type": "string"},
    },
}
_POSTMARK = {
    "type": "object",
    "required": ["RecordType"],
    "properties": {
        "RecordType": {"type": "string"},
        "ID": {"type": "integer"},
        "MessageID": {"type": "string"},
        "Recipient": {"type": "string"},
        "Email": {"type": "string"},
        "DeliveredAt": {"type": "string", "format": "date-time"},
        "BouncedAt": {"type": "string", "format": "date-time"},
        "ReceivedAt": {"type": "string", "format": "date-time"},
        "ChangedAt": {"type": "string", "format": "date-time"},
        "SuppressSending": {"type": "boolean"},
        "OriginalLink": {"type": "string"},
        "Metadata": {
            "type": "object",
            "properties": {"enrollment_id": {"type": "string"}, "step_number": {"type": "string"}},
        },
    },
}
_PHANTOMBUSTER_ROW = {
    "type": "object",
    "properties": {
        "enrollmentId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "error": {"type": "string"},
        "profileUrl": {"type": "string"},
    },
}
_PHANTOMBUSTER = {
    "type": "object",
    "required": ["agentId", "containerId"],
    "properties": {
        "agentId": {"type": "string"},
        "agentName": {"type": "string"},
        "containerId": {"type": "string"},
        "script": {"type": "string"},
        "exitCode": {"type": "integer"},
        "exitMessage": {"type": "string"},
        "resultObject": {
            "description": "a JSON array of rows, or a string holding one",
            "oneOf": [{"type": "string"}, {"type": "array", "items": _PHANTOMBUSTER_ROW}],
        },
    },
}


def _operation(summary: str, schema: dict[str, Any], security: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "stored (or recognised as duplicates, orphans or ignored)",
            "content": {"application/json": {"schema": _COUNTS}},
        }
    }
    for status, meaning in (
        (
            "400",
            "malformed JSON, JSON nested too deep, text that is not valid Unicode, a time"
            " out of range, or a missing or invalid field; nothing stored",
        ),
        ("401", "missing or wrong credentials, or none configured for this provider"),
        ("403", "the API key lacks the webhooks scope"),
        ("413", "the body is too large"),
        ("415", "the body is not application/json"),
        (
            "429",
            "too many requests for this credential, or failed ones from this address;"
            " retry after the Retry-After header's seconds",
        ),
    ):
        responses[status] = {
            "description": meaning,
            "content": {"application/json": {"schema": _ERROR}},
        }
    return {
        "post": {
            "summary": summary,
            "security": [{security: []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": responses,
        }
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "campaign-api webhooks", "version": "1.0.0"},
    "paths": {
        "/webhooks/events": _operation(
            f"Normalized events: one, or {{events: [...]}} with up to {MAX_EVENTS}",
            {
                "oneOf": [
                    _GENERIC_EVENT,
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "maxItems": MAX_EVENTS,
                                "items": _GENERIC_EVENT,
                            }
                        },
                    },
                ]
            },
            "apiKey",
        ),
        "/webhooks/lemlist": _operation("One lemlist activity", _LEMLIST, "querySecret"),
        "/webhooks/postmark": _operation("One Postmark webhook record", _POSTMARK, "basic"),
        "/webhooks/phantombuster": _operation(
            "One PhantomBuster agent run", _PHANTOMBUSTER, "querySecret"
        ),
    },
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer"},
            "querySecret": {"type": "apiKey", "in": "query", "name": "secret"},
            "basic": {"type": "http", "scheme": "basic"},
        }
    },
}
