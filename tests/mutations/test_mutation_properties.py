"""Property tests: arbitrary text, integers and JSON thrown at createTemplate, addEmailStep and
addLinkedInStep through GraphQL variables. Whatever arrives, the service answers below 500 with
either a GraphQL validation error or a well-formed payload, never leaks internals, and writes
nothing when it reports an error.
"""

from __future__ import annotations

import json
import math
import operator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    ADD_LINKEDIN_STEP,
    CREATE_TEMPLATE,
    count_rows,
    counts,
    create_template,
    post_raw,
)

FORBIDDEN = ("Traceback", "sqlalchemy", "asyncpg", "SELECT", "INSERT", "psycopg", "Internal")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # keep no example database in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _as_stored(value: Any) -> Any:
    """JSON as jsonb keeps it: numbers are exact decimals, so 1.393898328288033e+17 comes back
    as 139389832828803300 (same number, other spelling; as Python floats they differ)."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def _harmless(text: str) -> bool:
    """Inputs that do not themselves contain a word the leak check looks for (the service may
    legitimately echo an input in a message)."""
    lowered = text.lower()
    return not any(word.lower() in lowered for word in FORBIDDEN)


# Any code point, lone surrogates and NUL included: JSON can carry all of them ("\ud800").
any_char = st.characters(exclude_categories=[])
# Lengths on both sides of every limit of domain.md, and a few far beyond.
# Body minimum, name and subject, connection note, message, description, body maximum.
LIMITS = (10, 255, 300, 1500, 5000, 50_000)
boundary_lengths = st.sampled_from(
    sorted({0, 1, 100_000} | {limit + delta for limit in LIMITS for delta in (-1, 0, 1)})
)
texts = st.one_of(
    st.text(any_char, max_size=30),
    st.text(max_size=300),
    st.builds(operator.mul, st.text(min_size=1, max_size=2), boundary_lengths),
    st.builds(
        lambda pad, core, pad2: pad + core + pad2,
        st.text(" \t\n\r\u00a0\u3000", max_size=3),
        st.builds(operator.mul, st.sampled_from(["a", "é", "€", "𝄞"]), boundary_lengths),
        st.text(" \t\n", max_size=3),
    ),
    st.sampled_from(["", " ", "\x00", "a\x00b", "  x  ", "nope", "\ud800", "🎉" * 300]),
).filter(_harmless)
ints = st.one_of(
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([INT_MIN, -1, 0, 1, 2, 719, 720, 721, 999, 1000, 1001, INT_MAX]),
)
# Each field mixes plausible values with hostile ones, so that stored rows are not rare.
step_numbers = st.one_of(st.integers(1, 1000), ints)
delays = st.one_of(st.none(), st.integers(0, 720), ints)
# Placeholders, well formed ({{name}}, {{name|fallback}}) and broken, next to arbitrary text.
placeholder_bodies = st.builds(
    lambda before, placeholder, after: before + placeholder + after,
    st.text(max_size=20),
    st.sampled_from(
        ["{{first_name}}", "{{ company | your team }}", "{{first_name", "}}", "{{}}", "{{a.b}}"]
    ),
    st.text(min_size=10, max_size=20),
).filter(_harmless)
bodies = st.one_of(st.text(min_size=10, max_size=400).filter(_harmless), texts, placeholder_bodies)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=25,
)
settings_values = st.one_of(st.none(), json_values, st.dictionaries(texts, json_values, max_size=6))
uuid_like = st.one_of(st.none(), st.uuids().map(str), texts)

create_inputs = st.fixed_dictionaries(
    {"name": texts, "type": st.sampled_from(["EMAIL", "LINKEDIN", "MULTI_CHANNEL"])},
    optional={
        "description": st.none() | texts,
        "pathType": st.none() | st.sampled_from(["STRUCTURED", "DYNAMIC_AI"]),
        "icpProfileId": uuid_like,
        "settings": settings_values,
    },
)
email_inputs = st.fixed_dictionaries(
    {"stepNumber": step_numbers, "body": bodies},
    optional={
        "subject": st.none() | texts,
        "delayHours": delays,
        "abVariant": st.none() | texts,
    },
)
linkedin_inputs = st.fixed_dictionaries(
    {
        "stepNumber": step_numbers,
        "action": st.sampled_from(
            ["PROFILE_VISIT", "CONNECTION_REQUEST", "MESSAGE", "VOICE_MESSAGE"]
        ),
    },
    optional={"message": st.none() | bodies, "delayHours": delays},
)


PERSONALIZABLE = {"subject", "body", "message"}
"""The fields whose ``{{variable}}`` placeholders must be well formed."""


def _leaks(message: str) -> list[str]:
    return [word for word in FORBIDDEN if word.lower() in message.lower()]


async def _check(
    app: Starlette,
    client: httpx.AsyncClient,
    key: str,
    document: str,
    field: str,
    entity: str,
    table: str,
    variables: dict[str, Any],
    allowed_codes: set[str],
    input_fields: set[str],
) -> dict[str, Any] | None:
    """The invariants of one request; returns the created entity, if any. A personalizable
    field (subject, body, message) may also be refused with MALFORMED_PLACEHOLDER, but only
    when the value sent has a ``{{`` or ``}}``."""
    before = await counts(app)
    response = await post_raw(client, key, document, variables)
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 413:  # 100,000 four-byte characters, escaped, pass 1 MB
        sent = len(json.dumps({"query": document, "variables": variables}).encode())
        assert sent > app.state.settings.graphql_max_bytes
        assert body["error"] == "PAYLOAD_TOO_LARGE"
        event("body over the limit")
        assert await counts(app) == before
        return None
    messages: list[str] = []
    created = None
    refused = True
    if "errors" in body:
        # Only GraphQL validation (e.g. variable coercion): no resolver ran.
        assert body.get("data") is None, body
        for error in body["errors"]:
            assert "path" not in error, f"an execution error, not a validation error: {error}"
            messages.append(error["message"])
    else:
        result = body["data"][field]
        if result["errors"]:
            assert result[entity] is None, result
            for error in result["errors"]:
                assert len(error["field"]) == 2, error
                assert error["field"][0] == "input", error
                assert error["field"][1] in input_fields, error
                if error["code"] == "MALFORMED_PLACEHOLDER":
                    assert error["field"][1] in PERSONALIZABLE, error
                    sent = variables["input"][error["field"][1]]
                    assert "{{" in sent or "}}" in sent, (error, sent)
                    event("malformed placeholder")
                else:
                    assert error["code"] in allowed_codes, error
                messages.append(error["message"])
            fields = [tuple(e["field"]) for e in result["errors"]]
            assert len(fields) == len(set(fields)), f"two errors for one field: {result['errors']}"
        else:
            created = result[entity]
            assert created is not None, result
            where = "id = CAST(:id AS uuid)"
            assert await count_rows(app, table, where, id=created["id"]) == 1, result
            refused = False
    event("stored" if not refused else "refused" if "errors" not in body else "not valid GraphQL")
    for message in messages:
        assert not _leaks(message), message
    after = await counts(app)
    if refused:
        assert after == before
    else:
        assert after == before | {table: before[table] + 1}
    return created


@PROPERTY_SETTINGS
@given(data=create_inputs)
async def test_create_template_never_fails_badly(
    app: Starlette, client: httpx.AsyncClient, write_key: str, data: dict[str, Any]
) -> None:
    created = await _check(
        app,
        client,
        write_key,
        CREATE_TEMPLATE,
        "createTemplate",
        "template",
        "campaign_templates",
        {"input": data},
        {"INVALID"},
        {"name", "description", "type", "pathType", "icpProfileId", "settings"},
    )
    if created is not None:
        assert created["name"] == data["name"].strip()
        assert created["createdBy"] == "test-writer"
        given_settings = data.get("settings")
        expected = {} if given_settings is None else given_settings
        assert _as_stored(created["settings"]) == _as_stored(expected)


@pytest.fixture
async def template_id(client: httpx.AsyncClient, write_key: str) -> str:
    return str((await create_template(client, write_key, name="Property target"))["id"])


@PROPERTY_SETTINGS
@given(data=email_inputs)
async def test_add_email_step_never_fails_badly(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_id: str,
    data: dict[str, Any],
) -> None:
    created = await _check(
        app,
        client,
        write_key,
        ADD_EMAIL_STEP,
        "addEmailStep",
        "step",
        "email_steps",
        {"templateId": template_id, "input": data},
        {"INVALID", "STEP_CONFLICT"},
        {"stepNumber", "subject", "body", "delayHours", "abVariant"},
    )
    if created is not None:
        assert created["stepNumber"] == data["stepNumber"] >= 1
        assert 10 <= len(created["body"]) <= 50_000
        assert created["body"] == data["body"].strip()  # stored trimmed
        for optional in ("subject", "abVariant"):  # trimmed; blank or absent is null
            assert created[optional] == ((data.get(optional) or "").strip() or None), optional
        assert 0 <= created["delayHours"] <= 720
        assert created["delayHours"] == (data.get("delayHours") or 0)  # absent or null: 0


@PROPERTY_SETTINGS
@given(data=linkedin_inputs)
async def test_add_linkedin_step_never_fails_badly(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_id: str,
    data: dict[str, Any],
) -> None:
    created = await _check(
        app,
        client,
        write_key,
        ADD_LINKEDIN_STEP,
        "addLinkedInStep",
        "step",
        "linkedin_steps",
        {"templateId": template_id, "input": data},
        {"INVALID", "STEP_CONFLICT"},
        {"stepNumber", "action", "message", "delayHours"},
    )
    if created is not None:
        assert created["stepNumber"] == data["stepNumber"] >= 1
        assert created["action"] == data["action"]
        assert created["delayHours"] == (data.get("delayHours") or 0)  # absent or null: 0
        message = created["message"] or ""
        assert message == (data.get("message") or "").strip()  # stored trimmed
        limit = 300 if data["action"] == "CONNECTION_REQUEST" else 1500
        assert len(message) <= limit
        if data["action"] == "MESSAGE":
            assert message.strip()
        if data["action"] == "PROFILE_VISIT":
            assert message == ""


# --- hostile inputs a client can send, as fixed regression examples --------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "bad \ud800 name"}, "name"),
        ({"description": "lone \udfff surrogate"}, "description"),
        ({"settings": {"key\ud83d": 1}}, "settings"),
        ({"settings": {"k": ["value \ud800"]}}, "settings"),
        ({"settings": {"k": math.nan}}, "settings"),
        ({"settings": {"k": [math.inf]}}, "settings"),
        ({"settings": {"k\x00": 1}}, "settings"),
        ({"settings": {"k": "v\x00"}}, "settings"),
        ({"name": "nul\x00name"}, "name"),
    ],
    ids=[
        "name-surrogate",
        "description-surrogate",
        "settings-key-surrogate",
        "settings-value-surrogate",
        "settings-nan",
        "settings-infinity",
        "settings-key-nul",
        "settings-value-nul",
        "name-nul",
    ],
)
async def test_create_template_hostile_text_is_a_user_error(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    data: dict[str, Any],
    field: str,
) -> None:
    variables = {"input": {"name": "Fine", "type": "EMAIL"} | data}
    response = await post_raw(client, write_key, CREATE_TEMPLATE, variables)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, response.text
    result = body["data"]["createTemplate"]
    assert result["template"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["input", field])]
    assert await counts(app) == {"campaign_templates": 0, "email_steps": 0, "linkedin_steps": 0}


@pytest.mark.parametrize(
    ("document", "field", "data", "bad"),
    [
        (ADD_EMAIL_STEP, "addEmailStep", {"stepNumber": 1, "body": "long enough \ud800"}, "body"),
        (
            ADD_EMAIL_STEP,
            "addEmailStep",
            {"stepNumber": 1, "body": "long enough body", "subject": "\udc00"},
            "subject",
        ),
        (
            ADD_LINKEDIN_STEP,
            "addLinkedInStep",
            {"stepNumber": 1, "action": "MESSAGE", "message": "hi \ud800"},
            "message",
        ),
    ],
    ids=["email-body", "email-subject", "linkedin-message"],
)
async def test_add_step_hostile_text_is_a_user_error(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_id: str,
    document: str,
    field: str,
    data: dict[str, Any],
    bad: str,
) -> None:
    before = await counts(app)
    response = await post_raw(
        client, write_key, document, {"templateId": template_id, "input": data}
    )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, response.text
    result = body["data"][field]
    assert result["step"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["input", bad])]
    assert await counts(app) == before


async def test_settings_numbers_come_back_as_jsonb_keeps_them(
    client: httpx.AsyncClient, write_key: str
) -> None:
    """The case Hypothesis once found: the same number, spelt as jsonb's exact decimal."""
    template = await create_template(
        client, write_key, name="Big number", settings={"big": 1.393898328288033e17}
    )
    assert template["settings"] == {"big": 139389832828803300}
    assert _as_stored(template["settings"]) == _as_stored({"big": 1.393898328288033e17})
