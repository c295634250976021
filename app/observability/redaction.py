"""Keep secrets out of logs, whatever a field is called: API keys, credentials, signatures and
contact e-mail addresses are removed from every log line's keys and values, however nested.

Two nets, because either alone leaks: a field whose *name* says it holds a secret loses its
value whatever it looks like, and every string (values and names) is scrubbed of anything that
*looks* like a secret (``cak_`` keys, ``Bearer``/``Basic`` credentials, ``secret=`` query
parameters, e-mail addresses), wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"

# Field names (normalized to lower snake case) whose values are never logged.
_SENSITIVE_NAME = re.compile(
    r"(^|_)(authorization|auth|api_?key|apikey|key|password|passwd|pwd|secret|token|signature"
    r"|sig|cookie|credentials?|e_?mail|email_address)(_|$)"
)
_QUERY_SECRET = re.compile(
    r"(?i)\b(secret|password|passwd|token|api_key|apikey|key|signature|sig)=[^&\s\"']*"
)
_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]+"), rf"\1 {REDACTED}"),
    (re.compile(r"cak_[A-Za-z0-9_-]*"), f"cak_{REDACTED}"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[redacted-email]"),
)
# The structlog and logging plumbing keys that must pass through untouched.
_PLUMBING = frozenset({"_record", "_from_structlog", "exc_info", "stack_info"})


def redact(text: str) -> str:
    """``text`` with every credential, key, ``secret=`` parameter and e-mail address removed."""
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_sensitive_name(name: str) -> bool:
    """``password``, ``X-Api-Key``, ``webhookSecret``...; but ``api_key_name`` names a key."""
    normalized = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    if normalized.endswith(("_name", "_id")):
        return False
    return bool(_SENSITIVE_NAME.search(normalized))


def redact_value(value: Any) -> Any:
    """Scrub strings anywhere inside ``value`` (mappings, sequences, sets), keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            redact(str(k)): REDACTED if is_sensitive_name(str(k)) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return value


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor: the whole event, redacted by field name and by content."""
    redacted: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in _PLUMBING:
            redacted[key] = value
        elif is_sensitive_name(key):
            redacted[redact(key)] = REDACTED
        else:
            redacted[redact(key)] = redact_value(value)
    return redacted
