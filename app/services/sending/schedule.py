"""What a sender may claim now, and when it should look again.

Read with the database's clock (``now()``), so every sender on every machine agrees on what
is due and on whether an instance's window is open, whatever their own clocks say.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.db.driver import DriverConnection
from app.domain.enums import Channel, Provider, TemplateType
from app.services.sending import config as sending_config
from app.services.sending.claims import Eligible
from app.services.sending.config import ConfigProblem, SendingConfig
from app.services.sequence import used_channels

_ACTIVE = """
    SELECT now() AS now, i.id, i.provider_config, t.type::text AS template_type
    FROM campaign_instances i JOIN campaign_templates t ON t.id = i.template_id
    WHERE i.status = 'active'
"""

_NEXT = """
    SELECT
      (SELECT min(e.next_action_at) FROM enrollments e
       WHERE e.status = 'active' AND e.next_action_at IS NOT NULL
         AND e.instance_id = ANY($1::uuid[])
         AND NOT EXISTS (SELECT 1 FROM dispatches d
                         WHERE d.enrollment_id = e.id AND d.status IN ('queued', 'sending')))
        AS due,
      (SELECT min(next_attempt_at) FROM dispatches
       WHERE status = 'queued' AND instance_id = ANY($1::uuid[])) AS retry,
      (SELECT min(claimed_until) FROM dispatches WHERE status = 'sending') AS lease,
      (SELECT count(*) FROM enrollments e
       WHERE e.status = 'active' AND e.next_action_at IS NOT NULL AND e.next_action_at <= now()
         AND NOT EXISTS (SELECT 1 FROM dispatches d
                         WHERE d.enrollment_id = e.id AND d.status IN ('queued', 'sending')))
        AS backlog
"""


@dataclass(frozen=True, slots=True)
class Plan:
    now: datetime
    eligible: list[Eligible] = field(default_factory=list)
    configs: dict[uuid.UUID, SendingConfig] = field(default_factory=dict)
    opens_at: list[datetime] = field(default_factory=list)
    """When each active instance outside its window opens again."""
    blocked: dict[Provider, list[uuid.UUID]] = field(default_factory=dict)
    """Active instances that wait because no client serves one of their providers."""
    misconfigured: dict[uuid.UUID, str] = field(default_factory=dict)

    @property
    def instance_ids(self) -> list[uuid.UUID]:
        return [e.instance_id for e in self.eligible]


async def plan(
    db: DriverConnection,
    can_send: Callable[[Provider], bool],
    runs_itself: Callable[[Provider], bool],
) -> Plan:
    """The active instances, sorted into those a sender may claim now and those that wait
    (window closed, provider without credentials, config no longer valid).

    ``runs_itself(provider)``: whether that provider runs the sequence on its own (a real
    lemlist account, not a dry run).
    """
    rows = await db.fetch(_ACTIVE)
    if not rows:
        return Plan(now=(await db.fetch("SELECT now() AS now"))[0]["now"])
    result = Plan(now=rows[0]["now"])
    for row in rows:
        _sort(result, row, can_send, runs_itself)
    return result


def _sort(
    result: Plan,
    row: Any,
    can_send: Callable[[Provider], bool],
    runs_itself: Callable[[Provider], bool],
) -> None:
    instance_id: uuid.UUID = row["id"]
    try:
        cfg = sending_config.parse(row["provider_config"])
    except ConfigProblem as exc:
        result.misconfigured[instance_id] = str(exc)
        return
    channels = used_channels(TemplateType(row["template_type"]))
    providers = {channel: cfg.provider(channel) for channel in channels}
    missing = [p for p in providers.values() if not can_send(p)]
    if missing:
        for provider in set(missing):
            result.blocked.setdefault(provider, []).append(instance_id)
        return
    if not cfg.is_open(result.now):
        result.opens_at.append(cfg.next_open(result.now))
        return
    result.configs[instance_id] = cfg
    result.eligible.append(
        Eligible(
            instance_id=instance_id,
            email_provider=providers.get(Channel.EMAIL),
            linkedin_provider=providers.get(Channel.LINKEDIN),
            lemlist_managed=frozenset(c for c, p in providers.items() if runs_itself(p)),
            daily_limit=cfg.daily_limit,
            local_day=cfg.local_day(result.now) if cfg.daily_limit else None,
        )
    )


@dataclass(frozen=True, slots=True)
class Outlook:
    """When the next work appears, as far as the database knows now."""

    next_at: datetime | None
    backlog: int


async def outlook(db: DriverConnection, current: Plan) -> Outlook:
    """The earliest of: a due touch of an eligible instance, a queued retry, an expiring
    lease, a closed window opening, tomorrow for an instance whose daily limit is spent."""
    row = (await db.fetch(_NEXT, current.instance_ids))[0]
    candidates = [t for t in (row["due"], row["retry"], row["lease"]) if t is not None]
    candidates.extend(current.opens_at)
    for cfg in current.configs.values():
        if cfg.daily_limit is not None:
            local = current.now.astimezone(cfg.zone)
            midnight = (local + timedelta(days=1)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            candidates.append(midnight)
    return Outlook(min(candidates) if candidates else None, row["backlog"])
