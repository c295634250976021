"""Shared documents and helpers for the instance lifecycle and enrollment tests.

Setup goes through the GraphQL mutations (templates, steps, instances, transitions), as a client
would do it; what a test asserts about what was stored is read back with SQL on the test's own
connections (``instance_row``, ``enrollment_rows``, ``transition_rows``, ``snapshot``), never
from a mutation's payload alone.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql_client import gql

# The template and step documents are shared with the mutation tests (re-exported here).
from tests.mutations.helpers import (
    ADD_EMAIL_STEP as ADD_EMAIL_STEP,
)
from tests.mutations.helpers import (
    ADD_LINKEDIN_STEP as ADD_LINKEDIN_STEP,
)
from tests.mutations.helpers import (
    ARCHIVE_TEMPLATE as ARCHIVE_TEMPLATE,
)
from tests.mutations.helpers import (
    CREATE_TEMPLATE as CREATE_TEMPLATE,
)
from tests.mutations.helpers import (
    ERRORS as ERRORS,
)
from tests.mutations.helpers import (
    REMOVE_EMAIL_STEP as REMOVE_EMAIL_STEP,
)
from tests.mutations.helpers import (
    REMOVE_LINKEDIN_STEP as REMOVE_LINKEDIN_STEP,
)

INSTANCE_FIELDS = """
    id name status providerConfig startedAt pausedAt completedAt failureReason
    template { id }
    metrics { enrolled }
    transitions { fromStatus toStatus actor reason at }
"""
ENROLLMENT_FIELDS = (
    "id contactId status currentStep nextActionAt metadata enrolledAt completedAt instance { id }"
)

CREATE_INSTANCE = f"""
mutation CreateInstance($input: CreateInstanceInput!) {{
  createInstance(input: $input) {{ instance {{ {INSTANCE_FIELDS} }} {ERRORS} }}
}}
"""


def _transition(field: str) -> str:
    """The document of a transition that takes only the instance id."""
    operation = field[0].upper() + field[1:]
    return (
        f"mutation {operation}($id: ID!) {{ {field}(id: $id) {{"
        f" instance {{ {INSTANCE_FIELDS} }} {ERRORS} }} }}"
    )


START_INSTANCE = _transition("startInstance")

PAUSE_INSTANCE = _transition("pauseInstance")

RESUME_INSTANCE = _transition("resumeInstance")

COMPLETE_INSTANCE = _transition("completeInstance")

FAIL_INSTANCE = f"""
mutation FailInstance($id: ID!, $reason: String!) {{
  failInstance(id: $id, reason: $reason) {{ instance {{ {INSTANCE_FIELDS} }} {ERRORS} }}
}}
"""

ENROLL_CONTACT = f"""
mutation EnrollContact($instanceId: ID!, $input: EnrollContactInput!) {{
  enrollContact(instanceId: $instanceId, input: $input) {{
    enrollment {{ {ENROLLMENT_FIELDS} }} {ERRORS}
  }}
}}
"""

BULK_ENROLL = f"""
mutation BulkEnroll($instanceId: ID!, $contacts: [EnrollContactInput!]!) {{
  bulkEnroll(instanceId: $instanceId, contacts: $contacts) {{
    enrolledCount skippedCount enrollments {{ id contactId status nextActionAt metadata }}
    skipped {{ index contactId reason message }}
    {ERRORS}
  }}
}}
"""

BULK_ENROLL_COUNTS = f"""
mutation BulkEnrollCounts($instanceId: ID!, $contacts: [EnrollContactInput!]!) {{
  bulkEnroll(instanceId: $instanceId, contacts: $contacts) {{
    enrolledCount skippedCount {ERRORS}
  }}
}}
"""

ADD_SUPPRESSION = f"""
mutation AddSuppression($input: AddSuppressionInput!) {{
  addSuppression(input: $input) {{ suppression {{ id channel address reason }} {ERRORS} }}
}}
"""

PAUSE_ENROLLMENT = f"""
mutation PauseEnrollment($id: ID!) {{
  pauseEnrollment(id: $id) {{ enrollment {{ {ENROLLMENT_FIELDS} }} {ERRORS} }}
}}
"""

RESUME_ENROLLMENT = f"""
mutation ResumeEnrollment($id: ID!) {{
  resumeEnrollment(id: $id) {{ enrollment {{ {ENROLLMENT_FIELDS} }} {ERRORS} }}
}}
"""

REMOVE_ENROLLMENT = f"""
mutation RemoveEnrollment($id: ID!) {{
  removeEnrollment(id: $id) {{ enrollment {{ {ENROLLMENT_FIELDS} }} {ERRORS} }}
}}
"""

# The transition mutations by name: (document, payload field).
TRANSITION_DOCUMENTS = {
    "start": (START_INSTANCE, "startInstance"),
    "pause": (PAUSE_INSTANCE, "pauseInstance"),
    "resume": (RESUME_INSTANCE, "resumeInstance"),
    "complete": (COMPLETE_INSTANCE, "completeInstance"),
    "fail": (FAIL_INSTANCE, "failInstance"),
}

STATUSES = ("draft", "active", "paused", "completed", "failed")


def payload(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The mutation's payload; fails on any top-level GraphQL error."""
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


async def mutate(
    client: httpx.AsyncClient, key: str, document: str, field: str, variables: dict[str, Any]
) -> dict[str, Any]:
    return payload(await gql(client, key, document, variables), field)


def ok(result: dict[str, Any], entity: str) -> dict[str, Any]:
    """The entity of a successful payload (no errors)."""
    assert result["errors"] == [], result
    value: dict[str, Any] = result[entity]
    assert value is not None, result
    return value


def assert_refused(
    result: dict[str, Any], entity: str | None, code: str, field: list[str]
) -> dict[str, Any]:
    """Exactly one user error with ``code`` on ``field``, and no entity."""
    if entity is not None:
        assert result[entity] is None, result
    assert len(result["errors"]) == 1, result["errors"]
    error: dict[str, Any] = result["errors"][0]
    assert error["code"] == code, result["errors"]
    assert error["field"] == field, result["errors"]
    assert error["message"], result["errors"]
    return error


def random_id() -> str:
    return str(uuid.uuid4())


# --- templates and steps ----------------------------------------------------------------------


async def create_template(
    client: httpx.AsyncClient,
    key: str,
    type: str = "EMAIL",
    email: list[tuple[int, int]] | None = None,
    linkedin: list[tuple[int, int]] | None = None,
) -> str:
    """A stored template of ``type`` with email and LinkedIn steps given as (number, delay)."""
    result = await mutate(
        client, key, CREATE_TEMPLATE, "createTemplate", {"input": {"name": "Seq", "type": type}}
    )
    template_id: str = ok(result, "template")["id"]
    for number, delay in email or []:
        await add_email_step(client, key, template_id, number, delay)
    for number, delay in linkedin or []:
        await add_linkedin_step(client, key, template_id, number, delay)
    return template_id


async def add_email_step(
    client: httpx.AsyncClient,
    key: str,
    template_id: str,
    number: int,
    delay: int,
    body: str | None = None,
    subject: str | None = None,
) -> str:
    """An email step; its body uses {{first_name}} unless ``body`` is given."""
    data: dict[str, Any] = {
        "stepNumber": number,
        "body": f"Hello {{{{first_name}}}}, step {number}." if body is None else body,
        "delayHours": delay,
    }
    if subject is not None:
        data["subject"] = subject
    result = await mutate(
        client, key, ADD_EMAIL_STEP, "addEmailStep", {"templateId": template_id, "input": data}
    )
    step_id: str = ok(result, "step")["id"]
    return step_id


async def add_linkedin_step(
    client: httpx.AsyncClient,
    key: str,
    template_id: str,
    number: int,
    delay: int,
    action: str = "PROFILE_VISIT",
    message: str | None = None,
) -> str:
    data: dict[str, Any] = {"stepNumber": number, "action": action, "delayHours": delay}
    if message is not None:
        data["message"] = message
    result = await mutate(
        client,
        key,
        ADD_LINKEDIN_STEP,
        "addLinkedInStep",
        {"templateId": template_id, "input": data},
    )
    step_id: str = ok(result, "step")["id"]
    return step_id


async def archive_template(client: httpx.AsyncClient, key: str, template_id: str) -> None:
    result = await mutate(client, key, ARCHIVE_TEMPLATE, "archiveTemplate", {"id": template_id})
    assert ok(result, "template")["isActive"] is False, result


# --- instances --------------------------------------------------------------------------------

LINKEDIN_ACTIONS = ("profile_visit", "connection_request", "message", "voice_message")
PROVIDER_CONFIG: dict[str, Any] = {
    "from_email": "team@example.com",
    "phantombuster_agents": {action: f"agent-{action}" for action in LINKEDIN_ACTIONS},
}
"""A providerConfig that the default providers of every channel accept at start: Postmark's
sender address, and a PhantomBuster agent for each LinkedIn action."""


async def create_instance(
    client: httpx.AsyncClient, key: str, template_id: str, **fields: Any
) -> dict[str, Any]:
    """A draft instance of ``template_id``; unless ``fields`` say otherwise, its providerConfig
    is PROVIDER_CONFIG, so that it can be started whatever channels the template uses.
    (providerConfig is always sent: the omitted-field path is test_create_instance's.)"""
    data = {
        "templateId": template_id,
        "name": "Q3 outbound",
        "providerConfig": PROVIDER_CONFIG,
    } | fields
    result = await mutate(client, key, CREATE_INSTANCE, "createInstance", {"input": data})
    return ok(result, "instance")


async def run_transition(
    client: httpx.AsyncClient, key: str, instance_id: str, name: str, reason: str = "boom"
) -> dict[str, Any]:
    """The payload of transition ``name`` (start, pause, resume, complete, fail)."""
    document, field = TRANSITION_DOCUMENTS[name]
    variables: dict[str, Any] = {"id": instance_id}
    if name == "fail":
        variables["reason"] = reason
    return await mutate(client, key, document, field, variables)


# How to bring a fresh draft instance to each status, with the transition mutations.
PATH_TO = {
    "draft": (),
    "active": ("start",),
    "paused": ("start", "pause"),
    "completed": ("start", "complete"),
    "failed": ("fail",),
}


async def instance_in(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, template_id: str, status: str
) -> str:
    """A new instance of ``template_id`` brought to ``status`` through the API."""
    instance_id: str = (await create_instance(client, key, template_id))["id"]
    for name in PATH_TO[status]:
        ok(await run_transition(client, key, instance_id, name), "instance")
    assert (await instance_row(engine, instance_id))["status"] == status
    return instance_id


def person(contact_id: str, **fields: Any) -> dict[str, Any]:
    """Metadata that every template of these helpers can enroll: an e-mail address and a
    LinkedIn profile URL derived from ``contact_id`` (distinct contacts, distinct addresses),
    and the ``first_name`` their email steps use; ``fields`` are added or replace these."""
    slug = re.sub(r"[^a-z0-9]+", "-", contact_id.lower()).strip("-")
    if slug != contact_id.lower() or len(slug) > 40:
        slug = f"{slug[:40]}-{hashlib.sha256(contact_id.encode()).hexdigest()[:10]}".lstrip("-")
    return {
        "email": f"{slug}@example.com",
        "linkedin_url": f"https://www.linkedin.com/in/{slug}",
        "first_name": "Ada",
    } | fields


async def enroll(
    client: httpx.AsyncClient,
    key: str,
    instance_id: str,
    contact_id: str,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Enroll ``contact_id`` with ``metadata`` as given, or ``person(contact_id)`` when None."""
    data: dict[str, Any] = {
        "contactId": contact_id,
        "metadata": person(contact_id) if metadata is None else metadata,
    }
    result = await mutate(
        client, key, ENROLL_CONTACT, "enrollContact", {"instanceId": instance_id, "input": data}
    )
    return ok(result, "enrollment")


async def bulk_enroll(
    client: httpx.AsyncClient,
    key: str,
    instance_id: str,
    contacts: list[dict[str, Any]],
    document: str = BULK_ENROLL,
) -> dict[str, Any]:
    return await mutate(
        client, key, document, "bulkEnroll", {"instanceId": instance_id, "contacts": contacts}
    )


def contacts(ids: list[str] | range, prefix: str = "crm-") -> list[dict[str, Any]]:
    """bulkEnroll input: one contact per id, each with ``person`` metadata."""
    return [{"contactId": f"{prefix}{i}", "metadata": person(f"{prefix}{i}")} for i in ids]


async def suppress(
    client: httpx.AsyncClient, admin_key: str, address: str, channel: str = "EMAIL"
) -> dict[str, Any]:
    """Put ``address`` on the suppression list through addSuppression (admin scope)."""
    result = await mutate(
        client,
        admin_key,
        ADD_SUPPRESSION,
        "addSuppression",
        {"input": {"address": address, "channel": channel}},
    )
    return ok(result, "suppression")


# --- SQL reads --------------------------------------------------------------------------------


async def fetch_all(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = (await connection.execute(text(sql), params)).mappings().all()
    return [dict(row) for row in rows]


async def fetch_one(engine: AsyncEngine, sql: str, **params: Any) -> dict[str, Any]:
    rows = await fetch_all(engine, sql, **params)
    assert len(rows) == 1, rows
    return rows[0]


async def db_now(engine: AsyncEngine) -> Any:
    """The database's clock (a statement of its own, so not a transaction start of the app's)."""
    return (await fetch_one(engine, "SELECT now() AS now"))["now"]


async def instance_row(engine: AsyncEngine, instance_id: str) -> dict[str, Any]:
    return await fetch_one(
        engine,
        "SELECT id, template_id, name, status::text AS status, provider_config, started_at,"
        " paused_at, completed_at, failure_reason, total_enrolled, created_at, updated_at"
        " FROM campaign_instances WHERE id = CAST(:id AS uuid)",
        id=instance_id,
    )


async def enrollment_rows(engine: AsyncEngine, instance_id: str) -> list[dict[str, Any]]:
    return await fetch_all(
        engine,
        "SELECT id, contact_id, status::text AS status, current_step, next_action_at, metadata,"
        " enrolled_at, completed_at, updated_at FROM enrollments"
        " WHERE instance_id = CAST(:id AS uuid) ORDER BY contact_id",
        id=instance_id,
    )


async def enrollment_row(engine: AsyncEngine, enrollment_id: str) -> dict[str, Any]:
    return await fetch_one(
        engine,
        "SELECT id, instance_id, contact_id, status::text AS status, current_step,"
        " next_action_at, metadata, completed_at, updated_at FROM enrollments"
        " WHERE id = CAST(:id AS uuid)",
        id=enrollment_id,
    )


async def transition_rows(engine: AsyncEngine, instance_id: str) -> list[dict[str, Any]]:
    return await fetch_all(
        engine,
        "SELECT from_status::text AS from_status, to_status::text AS to_status, actor, reason, at"
        " FROM instance_transitions WHERE instance_id = CAST(:id AS uuid)"
        " ORDER BY at, created_at, id",
        id=instance_id,
    )


async def count(engine: AsyncEngine, table: str, where: str = "", **params: Any) -> int:
    assert table in {
        "campaign_instances",
        "instance_transitions",
        "enrollments",
        "campaign_templates",
    }
    sql = f"SELECT count(*) AS n FROM {table}" + (f" WHERE {where}" if where else "")
    return int((await fetch_one(engine, sql, **params))["n"])


async def snapshot(engine: AsyncEngine, instance_id: str) -> dict[str, Any]:
    """Everything a transition could write: the instance row, its enrollments and its log."""
    return {
        "instance": await instance_row(engine, instance_id),
        "enrollments": await enrollment_rows(engine, instance_id),
        "transitions": await transition_rows(engine, instance_id),
    }


def engine_of(app: Starlette) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine
