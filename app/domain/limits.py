"""The numeric limits of domain.md, named once so service checks and DB CHECKs agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

NAME_MAX = 255
DESCRIPTION_MAX = 5_000
SUBJECT_MAX = 255
BODY_MIN = 10
BODY_MAX = 50_000
DELAY_HOURS_MAX = 720
LINKEDIN_MESSAGE_MAX = 1_500
CONNECTION_NOTE_MAX = 300
AB_VARIANT_MAX = 50
CONTACT_ID_MAX = 255
PROVIDER_EVENT_ID_MAX = 255
FAILURE_REASON_MAX = 2_000
JSON_MAX_BYTES = 10_240
JSON_MAX_DEPTH = 5
BULK_ENROLL_MAX = 10_000
STEP_NUMBER_MAX = 1_000
ERROR_MESSAGE_MAX = 2_000
ERROR_CODE_MAX = 100
DAILY_LIMIT_MAX = 1_000_000
NODES_MAX = 100
"""Ids one nodes(ids:) takes: a page's worth, as connections' first."""
REMOVAL_REASON_MAX = 500
JSON_NESTING_MAX = 64
"""Deepest nesting of arrays and objects in a webhook body, or in JSON text inside one (a
PhantomBuster resultObject): far more than any provider's format nests (a generic batch with
metadata at its limit: 8), and far below Python's recursion limit, so nothing that walks a
parsed payload can overflow the stack. A safety bound, not a tunable."""
TIMESTAMP_MIN = datetime(1, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime.max.replace(tzinfo=UTC) - timedelta(hours=DELAY_HOURS_MAX)
"""The instants a timestamp input may name, once its UTC offset is applied. PostgreSQL's
timestamptz holds 4713 BC to 294276 AD, Python's datetime years 1 to 9999: the narrower
wins, and the top keeps DELAY_HOURS_MAX of room, so the next step's due time computed from
an event (``occurred_at`` + a step's delay) still reads back into Python."""
