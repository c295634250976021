"""What the resilience tests share: the 503 contract and fresh events."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from app.web.unavailable import RETRY_AFTER_S
from tests.webhooks.helpers import load, with_enrollment

READ = "{ templates(first: 5) { totalCount nodes { id name } } }"


def assert_unavailable(response: httpx.Response) -> None:
    """The 503 every route gives when the database is away: Retry-After and a JSON error."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.json()["error"] == "DATABASE_UNAVAILABLE", response.text
    assert "Traceback" not in response.text


def lemlist_event(enrollment_id: str) -> dict[str, Any]:
    """A lemlist activity with a fresh id: lemlist authenticates by a secret, not a key, so
    its request reaches the group-commit batcher without any SQL before it."""
    payload = copy.deepcopy(
        with_enrollment(load("lemlist", "emailsOpened"), "lemlist", enrollment_id)
    )
    payload["_id"] = f"act-{uuid.uuid4().hex}"
    return payload
