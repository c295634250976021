"""The SELECT lists of the read side: ids as text, JSON as text (``<name>_json``) that rows
decode when a field reads ``<name>``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.models.instances import COUNTER_COLUMNS

TEMPLATE = (
    "t.id::text AS id, t.name, t.description, t.type, t.path_type,"
    " t.icp_profile_id::text AS icp_profile_id, t.settings::text AS settings_json, t.created_by,"
    " t.is_active, t.created_at, t.updated_at"
)
EMAIL_STEP = (
    "s.id::text AS id, s.template_id::text AS template_id, s.step_number, s.subject, s.body,"
    " s.delay_hours, s.ab_variant, s.is_active, s.created_at, s.updated_at"
)
LINKEDIN_STEP = (
    "s.id::text AS id, s.template_id::text AS template_id, s.step_number, s.action, s.message,"
    " s.delay_hours, s.is_active, s.created_at, s.updated_at"
)
INSTANCE = (
    "i.id::text AS id, i.template_id::text AS template_id, i.name, i.status,"
    " i.provider_config::text AS provider_config_json, i.started_at, i.paused_at, i.completed_at,"
    " i.failure_reason, i.created_at, i.updated_at, "
) + ", ".join(f"i.{c}" for c in COUNTER_COLUMNS)
ENROLLMENT = (
    "n.id::text AS id, n.instance_id::text AS instance_id, n.contact_id, n.status,"
    " n.current_step, n.next_action_at, n.metadata::text AS metadata_json, n.enrolled_at,"
    " n.completed_at, n.unsubscribed_at, n.removal_reason,"
    " n.moved_to_instance_id::text AS moved_to_instance_id, n.sentiment,"
    " n.created_at, n.updated_at"
)
EVENT = (
    "e.id::text AS id, e.enrollment_id::text AS enrollment_id,"
    " e.instance_id::text AS instance_id, e.event_type, e.channel, e.provider,"
    " e.provider_event_id, e.step_number, e.occurred_at, e.metadata::text AS metadata_json,"
    " e.sentiment, e.sentiment_by, e.sentiment_at, e.return_date, e.created_at"
)
DISPATCH = (
    "d.id::text AS id, d.enrollment_id::text AS enrollment_id,"
    " d.instance_id::text AS instance_id, d.channel, d.step_number, d.provider, d.status,"
    " d.attempts, d.next_attempt_at, d.due_at, d.provider_message_id, d.last_error,"
    " d.last_error_code, d.uncertain, d.dry_run, d.sent_at, d.created_at, d.updated_at"
)
SUPPRESSION = (
    "p.id::text AS id, p.channel, p.address, p.reason, p.event_id::text AS event_id,"
    " p.created_by, p.created_at"
)
TRANSITION = (
    "x.instance_id::text AS instance_id, x.from_status, x.to_status, x.actor, x.reason, x.at"
)


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class ReadStatement:
    """A read in the driver's own form (``$1`` placeholders) and its parameters' order."""

    sql: str
    parameters: tuple[str, ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.parameters]


@lru_cache(maxsize=1024)
def typed(sql: str) -> ReadStatement:
    """Compile ``:name`` placeholders to positional ones, once per statement text."""
    names: list[str] = []

    def position(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return ReadStatement(_NAMED_PARAMETER.sub(position, sql), tuple(names))
