"""Shared helpers: provider fixtures, campaigns built with SQL, and readers of what was stored.

Expectations are computed here from the test's own inputs (the step list of a template, the
events posted), following domain.md, never by calling the service code under test.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

LEMLIST_SECRET = "lemlist-s3cret-Q7vX2pLm9K"
PHANTOMBUSTER_SECRET = "phantom-s3cret-Zr4Tn8Wc1B"
POSTMARK_USER = "postmark-hook-user"
POSTMARK_PASSWORD = "postmark-pa55word-Hy6Dq3Js0V"
MAX_BYTES = 200_000


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


POSTMARK_AUTH = basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
T0 = datetime(2025, 11, 9, 9, 0, tzinfo=UTC)

LINKEDIN_TYPES = frozenset(
    {
        "profile_visited",
        "connection_requested",
        "connection_accepted",
        "message_sent",
        "voice_message_sent",
    }
)
SENT_TYPES = (
    "sent",
    "message_sent",
    "voice_message_sent",
    "connection_requested",
    "profile_visited",
)
# domain.md, "What an event does": the counter each event type moves.
COUNTER_OF = {
    **dict.fromkeys(SENT_TYPES, "total_sent"),
    "delivered": "total_delivered",
    "opened": "total_opened",
    "clicked": "total_clicked",
    "replied": "total_replied",
    "bounced": "total_bounced",
    "unsubscribed": "total_unsubscribed",
    "spam_complaint": "total_unsubscribed",
}
COUNTERS = (
    "total_sent",
    "total_delivered",
    "total_opened",
    "total_clicked",
    "total_replied",
    "total_bounced",
    "total_unsubscribed",
)
# domain.md: unsubscribed > bounced > replied > completed.
RANK = {"active": 0, "completed": 1, "replied": 2, "bounced": 3, "unsubscribed": 4}
STATUS_OF = {
    "replied": "replied",
    "bounced": "bounced",
    "unsubscribed": "unsubscribed",
    "spam_complaint": "unsubscribed",
}


def load(provider: str, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / provider / f"{name}.json").read_text())
    return payload


def fixture_names(provider: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / provider).glob("*.json"))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ----------------------------------------------------------------------------- campaigns


@dataclass(frozen=True, slots=True)
class Step:
    channel: str
    number: int
    delay_hours: int
    active: bool = True


@dataclass(slots=True)
class Campaign:
    template_type: str
    steps: tuple[Step, ...]
    template_id: str
    instance_id: str
    enrollment_ids: list[str] = field(default_factory=list)

    @property
    def enrollment_id(self) -> str:
        return self.enrollment_ids[0]

    def sequence(self) -> dict[int, int]:
        """domain.md, "One sequence across channels": step number -> smallest delay, over the
        active steps of the channels the template's type uses."""
        channels = {
            "email": {"email"},
            "linkedin": {"linkedin"},
            "multi_channel": {"email", "linkedin"},
        }[self.template_type]
        numbers: dict[int, int] = {}
        for step in self.steps:
            if step.active and step.channel in channels:
                numbers[step.number] = min(numbers.get(step.number, 10**6), step.delay_hours)
        return dict(sorted(numbers.items()))

    def after_sent(self, step: int, occurred_at: datetime) -> tuple[str, datetime | None]:
        """(status, next_action_at) of a running enrollment once ``step`` was sent."""
        following = [(n, d) for n, d in self.sequence().items() if n > step]
        if not following:
            return "completed", None
        return "active", occurred_at + timedelta(hours=following[0][1])


async def make_campaign(
    engine: AsyncEngine,
    steps: Sequence[Step],
    template_type: str = "multi_channel",
    enrollments: int = 1,
    current_step: int = 0,
    enrollment_ids: Sequence[str] | None = None,
) -> Campaign:
    """An active instance of a template with these steps and ``enrollments`` active
    enrollments (current_step as given, next_action_at set)."""
    tag = uuid.uuid4().hex[:10]
    async with engine.begin() as conn:
        template_id = (
            await conn.execute(
                text(
                    "INSERT INTO campaign_templates (name, type, path_type, settings, created_by)"
                    " VALUES (:name, CAST(:type AS campaign_type), 'structured', '{}', 'tests')"
                    " RETURNING id"
                ),
                {"name": f"template {tag}", "type": template_type},
            )
        ).scalar_one()
        for step in steps:
            if step.channel == "email":
                await conn.execute(
                    text(
                        "INSERT INTO email_steps (template_id, step_number, subject, body,"
                        " delay_hours, is_active) VALUES (:t, :n, :s, :b, :d, :a)"
                    ),
                    {
                        "t": template_id,
                        "n": step.number,
                        "s": f"Step {step.number}",
                        "b": f"Hello {{{{first_name}}}}, this is step {step.number}.",
                        "d": step.delay_hours,
                        "a": step.active,
                    },
                )
            else:
                await conn.execute(
                    text(
                        "INSERT INTO linkedin_steps (template_id, step_number, action, message,"
                        " delay_hours, is_active)"
                        " VALUES (:t, :n, 'connection_request', NULL, :d, :a)"
                    ),
                    {"t": template_id, "n": step.number, "d": step.delay_hours, "a": step.active},
                )
        instance_id = (
            await conn.execute(
                text(
                    "INSERT INTO campaign_instances (template_id, name, status, started_at,"
                    " provider_config, total_enrolled)"
                    " VALUES (:t, :name, 'active', now() - interval '1 day',"
                    " CAST(:config AS jsonb), :n) RETURNING id"
                ),
                {
                    "t": template_id,
                    "name": f"instance {tag}",
                    "config": json.dumps({"email_provider": "postmark"}),
                    "n": enrollments,
                },
            )
        ).scalar_one()
        ids = list(enrollment_ids or [str(uuid.uuid4()) for _ in range(enrollments)])
        for number, enrollment_id in enumerate(ids):
            await conn.execute(
                text(
                    "INSERT INTO enrollments (id, instance_id, contact_id, status, current_step,"
                    " next_action_at, metadata)"
                    " VALUES (:id, :i, :c, 'active', :step, :next, '{}')"
                ),
                {
                    "id": enrollment_id,
                    "i": instance_id,
                    "c": f"contact-{tag}-{number}",
                    "step": current_step,
                    "next": T0,
                },
            )
    return Campaign(template_type, tuple(steps), str(template_id), str(instance_id), ids)


# ----------------------------------------------------------------------------- readers


async def enrollment_state(engine: AsyncEngine, enrollment_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status::text AS status, current_step, next_action_at, completed_at,"
                    " unsubscribed_at, updated_at FROM enrollments WHERE id = CAST(:id AS uuid)"
                ),
                {"id": enrollment_id},
            )
        ).one()
    return dict(row._mapping)


async def counters(engine: AsyncEngine, instance_id: str) -> dict[str, int]:
    """The instance's counters as a reader sees them: the column plus its pending shards."""
    columns = ", ".join(
        f"i.{c} + coalesce(sum(s.{c.removeprefix('total_')}), 0) AS {c}" for c in COUNTERS
    )
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT {columns} FROM campaign_instances i"
                    " LEFT JOIN instance_counter_shards s ON s.instance_id = i.id"
                    " WHERE i.id = CAST(:id AS uuid) GROUP BY i.id"
                ),
                {"id": instance_id},
            )
        ).one()
    return {c: int(v) for c, v in row._mapping.items()}


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def count_rows(engine: AsyncEngine, table: str) -> int:
    return int(await scalar(engine, f"SELECT count(*) FROM {table}"))


async def stored_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, enrollment_id, instance_id, event_type::text AS event_type,"
                " channel::text AS channel, provider::text AS provider, provider_event_id,"
                " step_number, occurred_at, metadata, created_at"
                " FROM campaign_events ORDER BY occurred_at, id"
            )
        )
        return [dict(r._mapping) for r in rows]


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Everything ingestion may touch, to prove that a request changed nothing."""
    async with engine.connect() as conn:
        out: dict[str, Any] = {}
        for table, order in (
            ("campaign_events", "id"),
            ("event_outcomes", "enrollment_id, channel, step_number, counter"),
            ("instance_counter_shards", "instance_id, shard"),
            ("enrollments", "id"),
            ("campaign_instances", "id"),
        ):
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
            out[table] = [tuple(r) for r in rows]
    return out


def expected_counters(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """domain.md: each counter = COUNT(DISTINCT (enrollment, channel, step or 0)) over its
    event types, per instance. ``events`` carry ``instance_id`` besides the generic fields."""
    seen: dict[str, dict[str, set[tuple[str, str, int]]]] = defaultdict(
        lambda: {c: set() for c in COUNTERS}
    )
    for event in events:
        counter = COUNTER_OF.get(event["event_type"])
        channel = event.get("channel") or (
            "linkedin" if event["event_type"] in LINKEDIN_TYPES else "email"
        )
        per_instance = seen[event["instance_id"]]
        if counter is not None:
            per_instance[counter].add(
                (event["enrollment_id"], channel, event.get("step_number") or 0)
            )
    return {i: {c: len(v) for c, v in per.items()} for i, per in seen.items()}


# ----------------------------------------------------------------------------- posting


def event(
    enrollment_id: str,
    event_type: str,
    step: int | None = None,
    at: datetime | None = None,
    key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A generic (normalized) event; a fresh provider_event_id unless ``key`` is given."""
    body: dict[str, Any] = {
        "enrollment_id": enrollment_id,
        "event_type": event_type,
        "provider_event_id": key or f"evt-{uuid.uuid4().hex}",
        "occurred_at": iso(at or T0),
    }
    if step is not None:
        body["step_number"] = step
    body.update(extra)
    return body


async def post_events(
    client: httpx.AsyncClient, key: str, events: Sequence[dict[str, Any]] | dict[str, Any]
) -> httpx.Response:
    body = events if isinstance(events, dict) else {"events": list(events)}
    return await client.post(
        "/webhooks/events", json=body, headers={"authorization": f"Bearer {key}"}
    )


async def ok_events(
    client: httpx.AsyncClient, key: str, events: Sequence[dict[str, Any]] | dict[str, Any]
) -> dict[str, int]:
    response = await post_events(client, key, events)
    assert response.status_code == 200, response.text
    counts: dict[str, int] = response.json()
    return counts


async def post_lemlist(client: httpx.AsyncClient, payload: Any) -> httpx.Response:
    return await client.post("/webhooks/lemlist", params={"secret": LEMLIST_SECRET}, json=payload)


async def post_postmark(client: httpx.AsyncClient, payload: Any) -> httpx.Response:
    return await client.post("/webhooks/postmark", headers=POSTMARK_AUTH, json=payload)


async def post_phantombuster(client: httpx.AsyncClient, payload: Any) -> httpx.Response:
    return await client.post(
        "/webhooks/phantombuster", params={"secret": PHANTOMBUSTER_SECRET}, json=payload
    )


def with_enrollment(payload: dict[str, Any], provider: str, enrollment_id: str) -> dict[str, Any]:
    """A copy of a provider fixture pointing at ``enrollment_id``."""
    payload = copy.deepcopy(payload)
    if provider == "lemlist":
        payload["enrollmentId"] = enrollment_id
    elif provider == "postmark":
        payload["Metadata"]["enrollment_id"] = enrollment_id
    else:
        raise ValueError(provider)
    return payload
