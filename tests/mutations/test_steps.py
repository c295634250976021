"""addEmailStep / addLinkedInStep, updateEmailStep / updateLinkedInStep, removeEmailStep /
removeLinkedInStep.

The rules both channels share run once per channel: number boundaries, nulls, step-number
uniqueness among active steps, soft removal, unknown and malformed ids. Each channel's own rules
have tests of their own: subject and body lengths for email; for LinkedIn, which message each
action allows or needs, on add and when an update changes the action or the message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    ADD_LINKEDIN_STEP,
    EMAIL_STEP_FIELDS,
    ERRORS,
    LINKEDIN_STEP_FIELDS,
    REMOVE_EMAIL_STEP,
    REMOVE_LINKEDIN_STEP,
    STEP_TABLES,
    assert_refused,
    count_rows,
    counts,
    create_template,
    error_fields,
    mutate,
    random_id,
    read_template,
    step_by_id,
)

BODY = "Hi {{first_name}}, do you have 10 minutes this week?"
INT_MIN = -(2**31)


@dataclass(frozen=True)
class Channel:
    """A step channel: its mutations, its fields, and the inputs the shared tests send it."""

    name: str  # "email" or "linkedin"
    type: str  # as the mutations spell it: "EmailStep", "LinkedInStep"
    add_document: str
    remove_document: str
    selection: str  # the step fields every document selects
    fields: tuple[str, ...]  # what the tests compare (id and timestamps aside)
    optional: tuple[str, ...]  # the fields an update may set to null
    valid: dict[str, Any]  # the smallest valid input, step number 1
    defaults: dict[str, Any]  # what `valid` leaves out reads back as
    full: dict[str, Any]  # every field, for an add
    initial: dict[str, Any]  # the `step` fixture, step number 1
    updated: dict[str, Any]  # every field of `initial` changed
    edit: dict[str, Any]  # one valid change to `initial` that keeps its number
    all_wrong: dict[str, Any]  # an add input breaking the rule of each of `all_wrong_fields`
    all_wrong_fields: tuple[str, ...]

    @property
    def table(self) -> str:
        return STEP_TABLES[self.name]

    @property
    def all_steps(self) -> str:  # the read_template key of every step, removed ones included
        return f"{self.name}Steps"

    @property
    def active_steps(self) -> str:
        return f"active{self.name.capitalize()}Steps"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f not in (*self.optional, "isActive"))

    @property
    def update_document(self) -> str:
        return (
            f"mutation Update{self.type}($id: ID!, $input: Update{self.type}Input!) {{"
            f" update{self.type}(id: $id, input: $input) {{ step {{ {self.selection} }} {ERRORS} }}"
            " }"
        )

    @property
    def other(self) -> Channel:
        return LINKEDIN if self is EMAIL else EMAIL


EMAIL = Channel(
    name="email",
    type="EmailStep",
    add_document=ADD_EMAIL_STEP,
    remove_document=REMOVE_EMAIL_STEP,
    selection=EMAIL_STEP_FIELDS,
    fields=("stepNumber", "subject", "body", "delayHours", "abVariant", "isActive"),
    optional=("subject", "abVariant"),
    valid={"stepNumber": 1, "body": BODY},
    defaults={"subject": None, "delayHours": 0, "abVariant": None, "isActive": True},
    full=dict(stepNumber=2, subject="Quick question", body=BODY, delayHours=48, abVariant="B"),
    initial=dict(stepNumber=1, subject="Original subject", body=BODY, delayHours=24, abVariant="A"),
    updated=dict(
        stepNumber=5, subject="New subject", body="Brand new body", delayHours=72, abVariant="B"
    ),
    edit={"subject": "Same"},
    all_wrong={"stepNumber": 0, "body": "short", "subject": "s" * 256, "delayHours": 721},
    all_wrong_fields=("body", "delayHours", "stepNumber", "subject"),
)
LINKEDIN = Channel(
    name="linkedin",
    type="LinkedInStep",
    add_document=ADD_LINKEDIN_STEP,
    remove_document=REMOVE_LINKEDIN_STEP,
    selection=LINKEDIN_STEP_FIELDS,
    fields=("stepNumber", "action", "message", "delayHours", "isActive"),
    optional=("message",),
    valid={"stepNumber": 1, "action": "PROFILE_VISIT"},
    defaults={"message": None, "delayHours": 0, "isActive": True},
    full=dict(stepNumber=3, action="MESSAGE", message="Thanks for connecting!", delayHours=24),
    initial=dict(
        stepNumber=1, action="CONNECTION_REQUEST", message="Glad to connect", delayHours=12
    ),
    updated={"stepNumber": 4, "action": "MESSAGE", "message": "m" * 1500, "delayHours": 720},
    edit={"message": "Same"},
    all_wrong={"stepNumber": 0, "action": "MESSAGE", "delayHours": 721},
    all_wrong_fields=("delayHours", "message", "stepNumber"),
)
CHANNELS = {channel.name: channel for channel in (EMAIL, LINKEDIN)}


def cases(argnames: str, **tables: Iterable[tuple[Any, ...]]) -> pytest.MarkDecorator:
    """Parametrizes ``channel`` and ``argnames`` with the (id, *values) rows of each channel
    named: ``cases("data", email=[...])`` runs for email only."""
    params = [
        pytest.param(CHANNELS[name], *values, id=f"{name}-{case_id}")
        for name, table in tables.items()
        for case_id, *values in table
    ]
    return pytest.mark.parametrize(("channel", *argnames.split(",")), params)


def both(table: Iterable[tuple[Any, ...]]) -> dict[str, Iterable[tuple[Any, ...]]]:
    return dict.fromkeys(CHANNELS, table)


@dataclass(frozen=True)
class Steps:
    """One channel's mutations on one template, sent with the write key."""

    app: Starlette
    client: httpx.AsyncClient
    key: str
    template: dict[str, Any]
    channel: Channel

    @property
    def other(self) -> Steps:
        return replace(self, channel=self.channel.other)

    async def add(self, data: dict[str, Any]) -> dict[str, Any]:
        """The payload; mutate() fails on any GraphQL error, which must never happen."""
        variables = {"templateId": self.template["id"], "input": data}
        document, field = self.channel.add_document, f"add{self.channel.type}"
        return await mutate(self.client, self.key, document, field, variables)

    async def update(self, step_id: str, data: dict[str, Any]) -> dict[str, Any]:
        document, field = self.channel.update_document, f"update{self.channel.type}"
        return await mutate(self.client, self.key, document, field, {"id": step_id, "input": data})

    async def remove(self, step_id: str) -> dict[str, Any]:
        document, field = self.channel.remove_document, f"remove{self.channel.type}"
        return await mutate(self.client, self.key, document, field, {"id": step_id})

    async def read(self) -> dict[str, Any]:
        return await read_template(self.client, self.key, self.template["id"])

    async def stored(self, step_id: str) -> dict[str, Any]:
        """The step as the query API reads it back."""
        return step_by_id(await self.read(), self.channel.name, step_id)

    async def added(self, data: dict[str, Any]) -> dict[str, Any]:
        """A step that must be accepted, as the query API reads it back."""
        result = await self.add(data)
        assert result["errors"] == [], result
        return await self.stored(result["step"]["id"])

    async def count(self, where: str = "") -> int:
        return await count_rows(self.app, self.channel.table, where)

    async def target(self, on: str) -> dict[str, Any] | None:
        """None to add a step; the `initial` step, stored, to update it."""
        return None if on == "add" else await self.added(self.channel.initial)

    async def send(self, data: dict[str, Any], step: dict[str, Any] | None) -> dict[str, Any]:
        """Adds ``valid | data`` or, given a step, updates it with ``data``: the payload."""
        if step is None:
            return await self.add(self.channel.valid | data)
        return await self.update(step["id"], data)

    async def accepts(
        self, data: dict[str, Any], expected: dict[str, Any], step: dict[str, Any] | None
    ) -> None:
        """send() is accepted, and the step reads back as ``expected``."""
        result = await self.send(data, step)
        assert result["errors"] == [], result
        stored = await self.stored(result["step"]["id"])
        assert {k: stored[k] for k in expected} == expected

    async def refuses(self, data: dict[str, Any], field: str, step: dict[str, Any] | None) -> None:
        """send() is refused on ``field``, and nothing is stored (or the step is unchanged)."""
        assert_refused(await self.send(data, step), "step", "INVALID", ["input", field])
        if step is None:
            assert await self.count() == 0
        else:
            assert await self.stored(step["id"]) == step


@pytest.fixture(params=list(CHANNELS.values()), ids=list(CHANNELS))
def channel(request: pytest.FixtureRequest) -> Channel:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def steps(
    app: Starlette, client: httpx.AsyncClient, write_key: str, channel: Channel
) -> Steps:
    template = await create_template(
        client, write_key, name=f"{channel.name} sequence", type=channel.name.upper()
    )
    return Steps(app, client, write_key, template, channel)


@pytest.fixture
async def step(steps: Steps) -> dict[str, Any]:
    return await steps.added(steps.channel.initial)


ON = pytest.mark.parametrize("on", ["add", "update"])

# --- shared: add ------------------------------------------------------------------------------


async def test_add_stores_every_field_and_reads_back(steps: Steps) -> None:
    channel = steps.channel
    result = await steps.add(channel.full)
    assert result["errors"] == []
    created = result["step"]
    stored = await steps.read()
    step = step_by_id(stored, channel.name, created["id"])
    expected = channel.full | {"isActive": True}
    assert {k: step[k] for k in channel.fields} == expected
    assert {k: created[k] for k in channel.fields} == expected
    number = channel.full["stepNumber"]
    assert stored[channel.active_steps] == [{"id": created["id"], "stepNumber": number}]
    assert await steps.count() == 1


async def test_add_defaults(steps: Steps) -> None:
    step = await steps.added(steps.channel.valid)
    expected = steps.channel.valid | steps.channel.defaults
    assert {k: step[k] for k in steps.channel.fields} == expected


async def test_steps_are_ordered_by_number(steps: Steps) -> None:
    for number in (3, 1, 2):
        await steps.added(steps.channel.valid | {"stepNumber": number})
    stored = await steps.read()
    assert [s["stepNumber"] for s in stored[steps.channel.active_steps]] == [1, 2, 3]


async def test_add_with_explicit_null_delay_is_not_a_graphql_error(steps: Steps) -> None:
    """``delayHours: Int = 0`` is nullable in the contract: an explicit null must end as the
    default (0) or as a user error on delayHours, never as an unhandled error."""
    result = await steps.add(steps.channel.valid | {"delayHours": None})
    if result["errors"]:
        assert_refused(result, "step", "INVALID", ["input", "delayHours"])
        assert await steps.count() == 0
    else:
        assert (await steps.stored(result["step"]["id"]))["delayHours"] == 0


NUMBERS_ACCEPTED = [
    ("delay-0", {"delayHours": 0}),
    ("delay-720", {"delayHours": 720}),
    ("step-1", {"stepNumber": 1}),
]
NUMBERS_REFUSED = [
    ("delay-minus-1", {"delayHours": -1}, "delayHours"),
    ("delay-721", {"delayHours": 721}, "delayHours"),
    ("delay-min-int", {"delayHours": INT_MIN}, "delayHours"),
    ("step-0", {"stepNumber": 0}, "stepNumber"),
    ("step-minus-1", {"stepNumber": -1}, "stepNumber"),
    ("step-minus-3", {"stepNumber": -3}, "stepNumber"),
    ("step-minus-5", {"stepNumber": -5}, "stepNumber"),
    ("step-min-int", {"stepNumber": INT_MIN}, "stepNumber"),
]


@ON
@cases("data", **both(NUMBERS_ACCEPTED))
async def test_number_boundaries_accepted(steps: Steps, on: str, data: dict[str, Any]) -> None:
    await steps.accepts(data, data, await steps.target(on))


@ON
@cases("data,field", **both(NUMBERS_REFUSED))
async def test_number_boundaries_refused(
    steps: Steps, on: str, data: dict[str, Any], field: str
) -> None:
    await steps.refuses(data, field, await steps.target(on))


async def test_add_all_errors_reported_together(steps: Steps) -> None:
    result = await steps.add(steps.channel.all_wrong)
    assert result["step"] is None
    assert error_fields(result) == [("input", f) for f in steps.channel.all_wrong_fields]
    assert {e["code"] for e in result["errors"]} == {"INVALID"}
    assert await steps.count() == 0


async def test_add_to_unknown_template_is_not_found(steps: Steps) -> None:
    result = await replace(steps, template={"id": random_id()}).add(steps.channel.valid)
    assert_refused(result, "step", "NOT_FOUND", ["templateId"])
    assert await steps.count() == 0


@pytest.mark.parametrize("bad_id", ["nope", ""])
async def test_add_to_malformed_template_id_is_invalid(steps: Steps, bad_id: str) -> None:
    result = await replace(steps, template={"id": bad_id}).add(steps.channel.valid)
    assert_refused(result, "step", "INVALID", ["templateId"])
    assert await steps.count() == 0


async def test_add_taken_number_is_a_step_conflict(steps: Steps, step: dict[str, Any]) -> None:
    result = await steps.add(steps.channel.valid)  # step number 1, as `step` has
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    stored = await steps.read()
    assert [s["id"] for s in stored[steps.channel.all_steps]] == [step["id"]]
    assert await steps.count() == 1


async def test_a_step_number_is_per_template_and_per_channel(
    steps: Steps, client: httpx.AsyncClient, write_key: str
) -> None:
    channel = steps.channel
    own = await steps.added(channel.valid)
    elsewhere = replace(steps, template=await create_template(client, write_key, name="Other"))
    await elsewhere.added(channel.valid)
    theirs = await steps.other.added(channel.other.valid)
    assert await steps.count() == 2
    assert await steps.other.count() == 1
    stored = await steps.read()
    assert stored[channel.active_steps] == [{"id": own["id"], "stepNumber": 1}]
    assert stored[channel.other.active_steps] == [{"id": theirs["id"], "stepNumber": 1}]
    # Moving a step onto a number only the other channel's step holds is no conflict either.
    await steps.other.added(channel.other.valid | {"stepNumber": 2})
    moved = await steps.update(own["id"], {"stepNumber": 2})
    assert (moved["errors"], moved["step"]["stepNumber"]) == ([], 2)


# --- shared: update ---------------------------------------------------------------------------


async def test_update_every_field_reads_back(steps: Steps, step: dict[str, Any]) -> None:
    result = await steps.update(step["id"], steps.channel.updated)
    assert result["errors"] == []
    stored = await steps.stored(step["id"])
    assert {k: stored[k] for k in steps.channel.fields} == steps.channel.updated | {
        "isActive": True
    }
    assert stored["createdAt"] == step["createdAt"]


@cases(
    "field,value",
    email=[
        ("stepNumber", "stepNumber", 2),
        ("subject", "subject", "Only subject"),
        ("body", "body", "Only the body changes"),
        ("delayHours", "delayHours", 720),
        ("abVariant", "abVariant", "C"),
        ("subject-null", "subject", None),
        ("abVariant-null", "abVariant", None),
    ],
    linkedin=[
        ("stepNumber", "stepNumber", 7),
        ("message", "message", "Another note"),
        ("delayHours", "delayHours", 0),
        ("action", "action", "MESSAGE"),
        ("message-null", "message", None),
    ],
)
async def test_update_left_out_fields_unchanged(
    steps: Steps, step: dict[str, Any], field: str, value: Any
) -> None:
    """Only the fields an update names change; null clears an optional one."""
    result = await steps.update(step["id"], {field: value})
    assert result["errors"] == []
    stored = await steps.stored(step["id"])
    fields = steps.channel.fields
    assert {k: stored[k] for k in fields} == {k: step[k] for k in fields} | {field: value}


@cases("field", **{name: [(f, f) for f in c.required] for name, c in CHANNELS.items()})
async def test_update_null_on_required_field_refused(
    steps: Steps, step: dict[str, Any], field: str
) -> None:
    await steps.refuses({field: None}, field, step)


async def test_update_nulls_give_one_error_per_field(steps: Steps, step: dict[str, Any]) -> None:
    channel = steps.channel
    result = await steps.update(step["id"], dict.fromkeys(channel.required + channel.optional))
    assert result["step"] is None
    assert error_fields(result) == sorted(("input", f) for f in channel.required)
    assert await steps.stored(step["id"]) == step


async def test_update_to_taken_number_is_a_step_conflict(
    steps: Steps, step: dict[str, Any]
) -> None:
    second = await steps.added(steps.channel.initial | {"stepNumber": 2})
    result = await steps.update(second["id"], {"stepNumber": 1} | steps.channel.edit)
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    assert await steps.stored(second["id"]) == second
    assert await steps.stored(step["id"]) == step


async def test_update_keeping_own_number_is_fine(steps: Steps, step: dict[str, Any]) -> None:
    result = await steps.update(step["id"], {"stepNumber": 1} | steps.channel.edit)
    assert result["errors"] == []
    stored = await steps.stored(step["id"])
    assert {k: stored[k] for k in steps.channel.edit} == steps.channel.edit


async def test_update_unknown_and_malformed_ids(steps: Steps, step: dict[str, Any]) -> None:
    unknown = await steps.update(random_id(), steps.channel.edit)
    assert_refused(unknown, "step", "NOT_FOUND", ["id"])
    malformed = await steps.update("nope", steps.channel.edit)
    assert_refused(malformed, "step", "INVALID", ["id"])
    assert await steps.stored(step["id"]) == step


async def test_a_step_of_the_other_channel_is_not_found(steps: Steps) -> None:
    theirs = await steps.other.added(steps.channel.other.valid)
    updated = await steps.update(theirs["id"], steps.channel.edit)
    assert_refused(updated, "step", "NOT_FOUND", ["id"])
    assert_refused(await steps.remove(theirs["id"]), "step", "NOT_FOUND", ["id"])
    assert await steps.other.stored(theirs["id"]) == theirs


# --- shared: remove ---------------------------------------------------------------------------


async def test_remove_is_a_soft_delete(steps: Steps, step: dict[str, Any]) -> None:
    result = await steps.remove(step["id"])
    assert result["errors"] == []
    assert result["step"]["id"] == step["id"]
    assert result["step"]["isActive"] is False

    stored = await steps.read()
    assert stored[steps.channel.active_steps] == []
    removed = step_by_id(stored, steps.channel.name, step["id"])
    fields = steps.channel.fields
    assert {k: removed[k] for k in fields} == {k: step[k] for k in fields} | {"isActive": False}
    assert await steps.count() == 1


async def test_remove_frees_the_step_number(steps: Steps, step: dict[str, Any]) -> None:
    assert (await steps.remove(step["id"]))["errors"] == []
    again = await steps.added(steps.channel.valid)
    stored = await steps.read()
    assert stored[steps.channel.active_steps] == [{"id": again["id"], "stepNumber": 1}]
    assert {s["id"] for s in stored[steps.channel.all_steps]} == {step["id"], again["id"]}
    assert await steps.count("step_number = 1") == 2
    assert await steps.count("step_number = 1 AND is_active") == 1


async def test_update_to_number_of_removed_step_is_fine(steps: Steps, step: dict[str, Any]) -> None:
    second = await steps.added(steps.channel.valid | {"stepNumber": 2})
    assert (await steps.remove(step["id"]))["errors"] == []
    result = await steps.update(second["id"], {"stepNumber": 1})
    assert result["errors"] == []
    stored = await steps.read()
    assert stored[steps.channel.active_steps] == [{"id": second["id"], "stepNumber": 1}]


async def test_remove_twice_is_not_a_graphql_error_and_stays_removed(
    steps: Steps, step: dict[str, Any]
) -> None:
    assert (await steps.remove(step["id"]))["errors"] == []
    second = await steps.remove(step["id"])  # a payload, never a GraphQL error
    assert second["errors"] == [] or second["step"] is None
    assert (await steps.stored(step["id"]))["isActive"] is False


async def test_remove_unknown_and_malformed_ids(steps: Steps, step: dict[str, Any]) -> None:
    assert_refused(await steps.remove(random_id()), "step", "NOT_FOUND", ["id"])
    assert_refused(await steps.remove("nope"), "step", "INVALID", ["id"])
    assert await steps.stored(step["id"]) == step


async def test_refused_step_writes_change_no_table(steps: Steps) -> None:
    before = await counts(steps.app)
    await steps.add(steps.channel.all_wrong)
    await replace(steps, template={"id": random_id()}).add(steps.channel.valid)
    assert await counts(steps.app) == before


# --- email: subject and body ------------------------------------------------------------------

EMAIL_TEXT_ACCEPTED = [  # (id, input, what it reads back as)
    ("body-10", {"body": "0123456789"}, {"body": "0123456789"}),
    ("body-10-after-trim", {"body": "   0123456789   "}, {"body": "0123456789"}),
    ("body-50000", {"body": "b" * 50000}, {"body": "b" * 50000}),
    ("body-50000-non-ascii", {"body": "é" * 50000}, {"body": "é" * 50000}),
    ("subject-255", {"subject": "s" * 255}, {"subject": "s" * 255}),
    ("subject-null", {"subject": None}, {"subject": None}),
]
EMAIL_TEXT_REFUSED = [
    ("body-9", {"body": "123456789"}, "body"),
    ("body-9-after-trim", {"body": "  123456789  "}, "body"),
    ("body-empty", {"body": ""}, "body"),
    ("body-blank", {"body": "          "}, "body"),
    ("body-50001", {"body": "b" * 50001}, "body"),
    ("body-nul", {"body": "0123456789\x00"}, "body"),
    ("subject-256", {"subject": "s" * 256}, "subject"),
]


@ON
@cases("data,expected", email=EMAIL_TEXT_ACCEPTED)
async def test_email_subject_and_body_accepted(
    steps: Steps, on: str, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    await steps.accepts(data, expected, await steps.target(on))


@ON
@cases("data,field", email=EMAIL_TEXT_REFUSED)
async def test_email_subject_and_body_refused(
    steps: Steps, on: str, data: dict[str, Any], field: str
) -> None:
    await steps.refuses(data, field, await steps.target(on))


# --- LinkedIn: the message each action allows -------------------------------------------------

LINKEDIN_ADD_ACCEPTED = [  # (id, input, the message it reads back with)
    ("visit-no-message", {"action": "PROFILE_VISIT"}, None),
    ("visit-null-message", {"action": "PROFILE_VISIT", "message": None}, None),
    ("visit-empty-message", {"action": "PROFILE_VISIT", "message": ""}, None),
    ("visit-blank-message", {"action": "PROFILE_VISIT", "message": "   "}, None),
    ("connect-no-note", {"action": "CONNECTION_REQUEST"}, None),
    ("connect-300", {"action": "CONNECTION_REQUEST", "message": "c" * 300}, "c" * 300),
    ("message-1", {"action": "MESSAGE", "message": "m"}, "m"),
    ("message-1500", {"action": "MESSAGE", "message": "m" * 1500}, "m" * 1500),
    ("message-1500-non-ascii", {"action": "MESSAGE", "message": "é" * 1500}, "é" * 1500),
    ("voice-no-message", {"action": "VOICE_MESSAGE"}, None),
    ("voice-null-message", {"action": "VOICE_MESSAGE", "message": None}, None),
    ("voice-1500", {"action": "VOICE_MESSAGE", "message": "v" * 1500}, "v" * 1500),
]
LINKEDIN_ADD_REFUSED = [  # (id, input): refused on message
    ("connect-301", {"action": "CONNECTION_REQUEST", "message": "c" * 301}),
    ("message-absent", {"action": "MESSAGE"}),
    ("message-null", {"action": "MESSAGE", "message": None}),
    ("message-empty", {"action": "MESSAGE", "message": ""}),
    ("message-blank", {"action": "MESSAGE", "message": " \t\n "}),
    ("message-1501", {"action": "MESSAGE", "message": "m" * 1501}),
    ("message-1501-after-trim", {"action": "MESSAGE", "message": "  " + "m" * 1501 + "  "}),
    ("message-nul", {"action": "MESSAGE", "message": "hello\x00"}),
    ("voice-1501", {"action": "VOICE_MESSAGE", "message": "v" * 1501}),
    ("visit-with-message", {"action": "PROFILE_VISIT", "message": "Hi"}),
    ("visit-with-1501-message", {"action": "PROFILE_VISIT", "message": "p" * 1501}),
]
CONNECT = LINKEDIN.initial  # a connection request with a note
VISIT = LINKEDIN.valid  # a profile visit, no message
MESSAGE = {"stepNumber": 1, "action": "MESSAGE", "message": "Hello again"}
LONG_MESSAGE = {"stepNumber": 1, "action": "MESSAGE", "message": "m" * 301}
M_300 = {"message": "m" * 300}
LINKEDIN_UPDATE_ACCEPTED = [  # (id, the step, the update): it reads back as the update
    ("connect-300", CONNECT, {"message": "c" * 300}),
    ("to-visit-clearing-the-message", CONNECT, {"action": "PROFILE_VISIT", "message": None}),
    ("to-message-with-a-message", VISIT, {"action": "MESSAGE", "message": "Thanks for accepting!"}),
    ("to-connect-with-a-300-note", LONG_MESSAGE, {"action": "CONNECTION_REQUEST"} | M_300),
]
LINKEDIN_UPDATE_REFUSED = [  # (id, the step, the update): refused on message
    ("connect-301", CONNECT, {"message": "c" * 301}),
    ("message-1501", CONNECT, {"action": "MESSAGE", "message": "m" * 1501}),
    ("to-visit-keeping-the-message", CONNECT, {"action": "PROFILE_VISIT"}),
    ("to-message-without-one", VISIT, {"action": "MESSAGE"}),
    ("message-cleared", MESSAGE, {"message": None}),
    ("message-blanked", MESSAGE, {"message": "   "}),
    ("to-connect-with-a-301-note", LONG_MESSAGE, {"action": "CONNECTION_REQUEST"}),
]


@cases("data,message", linkedin=LINKEDIN_ADD_ACCEPTED)
async def test_linkedin_message_rules_accepted_on_add(
    steps: Steps, data: dict[str, Any], message: str | None
) -> None:
    await steps.accepts(data, {"action": data["action"], "message": message}, None)


@cases("data", linkedin=LINKEDIN_ADD_REFUSED)
async def test_linkedin_message_rules_refused_on_add(steps: Steps, data: dict[str, Any]) -> None:
    await steps.refuses(data, "message", None)


@cases("initial,data", linkedin=LINKEDIN_UPDATE_ACCEPTED)
async def test_linkedin_message_rules_accepted_on_update(
    steps: Steps, initial: dict[str, Any], data: dict[str, Any]
) -> None:
    await steps.accepts(data, data, await steps.added(initial))


@cases("initial,data", linkedin=LINKEDIN_UPDATE_REFUSED)
async def test_linkedin_message_rules_refused_on_update(
    steps: Steps, initial: dict[str, Any], data: dict[str, Any]
) -> None:
    await steps.refuses(data, "message", await steps.added(initial))
