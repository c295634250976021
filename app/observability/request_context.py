"""Per-request identity for logs, error reports and responses (the ``X-Request-ID``), and what
the GraphQL layer tells the access log about the operation it ran."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_PREFIX = secrets.token_hex(8)
_issued = itertools.count()


def _new_prefix() -> None:
    global _PREFIX
    _PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)  # a forked process must not repeat its parent's

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this task serves, or None outside a request."""
    return _request_id.get()


def choose_request_id(scope: Mapping[str, Any]) -> str:
    """Keep a caller's well-formed id (a proxy's, for tracing); anything else gets a fresh one:
    32 hex digits, this process's random prefix and a counter (unique without a system call
    per request)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _ACCEPTED_ID.match(candidate):
                return candidate
    return f"{_PREFIX}{next(_issued):016x}"


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make ``request_id`` the current request's id until ``unbind_request_id``."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


@dataclass(frozen=True, slots=True)
class GraphQLOperation:
    """Left in the request's ``scope["state"]["graphql_operation"]`` for the access log."""

    name: str
    type: str
    """``query`` or ``mutation``."""
