"""The SELECT lists of the read side: ids as text, JSON as text that rows decode on demand."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import TextClause, text

TEMPLATE = (
    "t.id::text AS id, t.name, t.description, t.type, t.path_type,"
    " t.icp_profile_id::text AS icp_profile_id, t.settings::text AS settings, t.created_by,"
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
    " i.provider_config::text AS provider_config, i.started_at, i.paused_at, i.completed_at,"
    " i.failure_reason, i.created_at, i.updated_at,"
    " i.total_enrolled, i.total_sent, i.total_delivered, i.total_opened, i.total_clicked,"
    " i.total_replied, i.total_bounced, i.total_unsubscribed"
)
ENROLLMENT = (
    "n.id::text AS id, n.instance_id::text AS instance_id, n.contact_id, n.status,"
    " n.current_step, n.next_action_at, n.metadata::text AS metadata, n.enrolled_at,"
    " n.completed_at, n.unsubscribed_at, n.created_at, n.updated_at"
)
EVENT = (
    "e.id::text AS id, e.enrollment_id::text AS enrollment_id,"
    " e.instance_id::text AS instance_id, e.event_type, e.channel, e.provider,"
    " e.provider_event_id, e.step_number, e.occurred_at, e.metadata::text AS metadata, e.created_at"
)
TRANSITION = (
    "x.instance_id::text AS instance_id, x.from_status, x.to_status, x.actor, x.reason, x.at"
)


@dataclass(frozen=True, slots=True)
class ReadStatement:
    """A read and the columns it returns as JSON text, decoded only when a field reads them:
    most queries never ask for metadata, and decoding it for every row cost more than SQL."""

    statement: TextClause
    json_columns: frozenset[str]


def typed(sql: str, *json_columns: str) -> ReadStatement:
    return ReadStatement(text(sql), frozenset(json_columns))
