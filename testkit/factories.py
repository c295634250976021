"""Test and benchmark data, written set-based: a dataset of any width costs a few statements."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Shape:
    templates: int
    instances_per_template: int
    enrollments_per_instance: int
    events_per_enrollment: int


# Rows get distinct created_at values (seconds apart, ordered by their ordinal) so that tests
# can predict the newest-first order; ties on created_at are still broken by id.
_STATEMENTS = (
    """
    INSERT INTO campaign_templates (name, type, path_type, settings, created_by, created_at)
    SELECT :prefix || ' template ' || g, 'multi_channel', 'structured', '{"tz": "UTC"}',
           'factory', now() - make_interval(secs => g)
    FROM generate_series(1, :templates) g
    """,
    """
    INSERT INTO email_steps (template_id, step_number, subject, body, delay_hours)
    SELECT t.id, s, 'Subject ' || s, 'Hello {{first_name}}, this is step ' || s, 24 * (s - 1)
    FROM campaign_templates t CROSS JOIN generate_series(1, 3) s
    WHERE t.name LIKE :prefix || ' template %'
    """,
    """
    INSERT INTO linkedin_steps (template_id, step_number, action, message, delay_hours)
    SELECT t.id, s, CASE s WHEN 1 THEN 'profile_visit'::linkedin_action
                           ELSE 'connection_request'::linkedin_action END,
           CASE s WHEN 1 THEN NULL ELSE 'Glad to connect' END, 12
    FROM campaign_templates t CROSS JOIN generate_series(1, 2) s
    WHERE t.name LIKE :prefix || ' template %'
    """,
    """
    INSERT INTO campaign_instances (template_id, name, status, started_at, created_at,
                                    total_enrolled)
    SELECT t.id, t.name || ' instance ' || g, 'active', now(),
           now() - make_interval(secs => g), :enrollments
    FROM campaign_templates t CROSS JOIN generate_series(1, :instances) g
    WHERE t.name LIKE :prefix || ' template %'
    """,
    """
    INSERT INTO enrollments (instance_id, contact_id, status, current_step, metadata, created_at)
    SELECT i.id, i.id::text || '-' || g, 'active', 1, jsonb_build_object('first_name', 'C' || g),
           now() - make_interval(secs => g)
    FROM campaign_instances i CROSS JOIN generate_series(1, :enrollments) g
    WHERE i.name LIKE :prefix || ' template %'
    """,
    """
    INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel, provider,
                                 provider_event_id, step_number, occurred_at)
    SELECT n.id, n.instance_id,
           (ARRAY['sent', 'delivered', 'opened', 'clicked', 'opened'])[1 + (g - 1) % 5]::event_type,
           'email', 'postmark', n.id::text || ':' || g, 1 + (g - 1) / 5,
           now() - make_interval(secs => g)
    FROM enrollments n JOIN campaign_instances i ON i.id = n.instance_id
    CROSS JOIN generate_series(1, :events) g
    WHERE i.name LIKE :prefix || ' template %'
    """,
)


async def build_dataset(connection: AsyncConnection, shape: Shape, prefix: str = "ds") -> None:
    """Templates with 3 email and 2 LinkedIn steps, active instances, enrollments and events."""
    params = {
        "prefix": prefix,
        "templates": shape.templates,
        "instances": shape.instances_per_template,
        "enrollments": shape.enrollments_per_instance,
        "events": shape.events_per_enrollment,
    }
    for statement in _STATEMENTS:
        await connection.execute(text(statement), params)
    await connection.execute(
        text(
            "UPDATE campaign_instances i SET total_sent = x.sent, total_opened = x.opened"
            " FROM (SELECT instance_id,"
            "   count(DISTINCT (enrollment_id, step_number)) FILTER (WHERE event_type = 'sent')"
            "     AS sent,"
            "   count(DISTINCT (enrollment_id, step_number)) FILTER (WHERE event_type = 'opened')"
            "     AS opened"
            "   FROM campaign_events GROUP BY instance_id) x"
            " WHERE x.instance_id = i.id AND i.name LIKE :prefix || ' template %'"
        ),
        {"prefix": prefix},
    )
