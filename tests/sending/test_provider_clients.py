"""The provider clients against the fake Postmark, PhantomBuster and lemlist servers: what each
puts on the wire (path, headers, body), how each answer becomes an outcome, and that a wrong
credential is retried without ever appearing in an outcome or a log line."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.domain.enums import Channel, LinkedInAction
from app.providers.http import create_client
from app.providers.lemlist_client import LemlistClient
from app.providers.outbound import Kind, Sender, Touch
from app.providers.phantombuster_client import PhantomBusterClient
from app.providers.postmark_client import PostmarkClient
from testkit.fake_providers import (
    LEMLIST_KEY,
    PHANTOMBUSTER_KEY,
    POSTMARK_TOKEN,
    FakeProviders,
    Reply,
)

SENDER = Sender(
    from_email="team@example.com",
    from_name='The "Best" Team',
    message_stream="outbound-cold",
    agents={action: f"agent-{action.value}" for action in LinkedInAction},
    lemlist_campaign_id="cam_123",
)
VARIABLES = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Engines",
    "title": "CTO",
    "seats": 3,
    "email": "Ada@Example.com",
    "tags": ["not", "a", "scalar"],
}


def touch(n: int, channel: Channel = Channel.EMAIL, action: LinkedInAction | None = None) -> Touch:
    return Touch(
        dispatch_id=uuid.uuid4(),
        enrollment_id=uuid.uuid4(),
        instance_id=uuid.uuid4(),
        contact_id=f"crm-{n}",
        channel=channel,
        step_number=n + 1,
        address=f"person{n}@example.com"
        if channel is Channel.EMAIL
        else f"linkedin.com/in/person-{n}",
        body=f"Hello Ada, message {n}",
        subject=f"Subject {n}" if channel is Channel.EMAIL else None,
        action=action,
        sender=SENDER,
        variables=VARIABLES,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = create_client(5.0, 4)
    yield client
    await client.aclose()


def base(providers: FakeProviders) -> str:
    return providers.base_url  # type: ignore[attr-defined,no-any-return]


def postmark_message(t: Touch) -> dict[str, Any]:
    """Postmark's /email body for a touch, as its API documents the fields."""
    return {
        "From": '"The Best Team" <team@example.com>',
        "To": t.address,
        "Subject": t.subject,
        "TextBody": t.body,
        "MessageStream": "outbound-cold",
        "TrackOpens": True,
        "Metadata": {
            "enrollment_id": str(t.enrollment_id),
            "step_number": str(t.step_number),
            "dispatch_id": str(t.dispatch_id),
        },
    }


# --- Postmark -----------------------------------------------------------------------------------


async def test_postmark_sends_one_message_to_email(
    providers: FakeProviders, http: httpx.AsyncClient
) -> None:
    client = PostmarkClient(http, base(providers), POSTMARK_TOKEN)
    one = touch(0)
    [outcome] = await client.send([one])

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", "/email")
    assert request.headers["x-postmark-server-token"] == POSTMARK_TOKEN
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.payload == postmark_message(one)
    [taken] = providers.taken("postmark")
    assert outcome.kind is Kind.SENT
    assert outcome.message_id == taken.message_id
    # The search by our dispatch id finds what was taken, and only that.
    assert await client.find(one) == taken.message_id
    assert await client.find(touch(1)) is None


async def test_postmark_sends_several_in_one_batch_with_an_answer_each(
    providers: FakeProviders, http: httpx.AsyncClient
) -> None:
    touches = [touch(n) for n in range(5)]
    refusals = {
        touches[1].address: Reply(422, {"ErrorCode": 406, "Message": "Inactive recipient"}),
        touches[2].address: Reply(422, {"ErrorCode": 300, "Message": "Invalid 'To' address"}),
        touches[3].address: Reply(422, {"ErrorCode": 405, "Message": "Not allowed to send"}),
    }
    providers.script = lambda provider, message: refusals.get(message["To"], Reply.taken())
    outcomes = await PostmarkClient(http, base(providers), POSTMARK_TOKEN).send(touches)

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", "/email/batch")
    assert request.headers["x-postmark-server-token"] == POSTMARK_TOKEN
    assert request.payload == [postmark_message(t) for t in touches]
    taken = {m.payload["To"]: m.message_id for m in providers.taken("postmark")}
    assert set(taken) == {touches[0].address, touches[4].address}
    assert [(o.kind, o.message_id, o.error_code) for o in outcomes] == [
        (Kind.SENT, taken[touches[0].address], None),
        (Kind.FAILED, None, "406"),  # names the recipient: failed for good
        (Kind.FAILED, None, "300"),
        (Kind.RETRY, None, "405"),  # about the account: retried
        (Kind.SENT, taken[touches[4].address], None),
    ]
    assert outcomes[1].error == "Inactive recipient"


@pytest.mark.parametrize("reply", [Reply.too_many(7), Reply.server_error()], ids=["429", "500"])
async def test_postmark_retries_a_whole_batch_it_refused(
    providers: FakeProviders, http: httpx.AsyncClient, reply: Reply
) -> None:
    touches = [touch(n) for n in range(3)]
    providers.script = lambda provider, message: (
        reply if message["To"] == touches[2].address else Reply.taken()
    )
    outcomes = await PostmarkClient(http, base(providers), POSTMARK_TOKEN).send(touches)
    assert providers.taken() == []
    expected_wait = 7.0 if reply.status == 429 else None
    assert [(o.kind, o.error_code, o.retry_after) for o in outcomes] == [
        (Kind.RETRY, f"HTTP {reply.status}", expected_wait)
    ] * 3


# --- PhantomBuster ------------------------------------------------------------------------------


async def test_phantombuster_launches_the_agent_of_each_action(
    providers: FakeProviders, http: httpx.AsyncClient
) -> None:
    touches = [touch(n, Channel.LINKEDIN, action) for n, action in enumerate(LinkedInAction)]
    outcomes = await PhantomBusterClient(http, base(providers), PHANTOMBUSTER_KEY).send(touches)

    assert len(providers.requests) == len(touches)  # one launch per action
    for t, request, outcome, taken in zip(
        touches, providers.requests, outcomes, providers.taken("phantombuster"), strict=True
    ):
        assert (request.method, request.path) == ("POST", "/api/v2/agents/launch")
        assert request.headers["x-phantombuster-key"] == PHANTOMBUSTER_KEY
        assert t.action is not None
        assert request.payload == {
            "id": SENDER.agents[t.action],
            "argument": {
                "profileUrl": t.address,
                "message": t.body,
                "enrollmentId": str(t.enrollment_id),
                "stepNumber": t.step_number,
                "dispatchId": str(t.dispatch_id),
            },
        }
        assert (outcome.kind, outcome.message_id) == (Kind.SENT, taken.message_id)
    assert {r.payload["id"] for r in providers.requests} == {
        f"agent-{a.value}" for a in LinkedInAction
    }


# --- lemlist ------------------------------------------------------------------------------------


async def test_lemlist_adds_the_lead_once_with_basic_auth_and_deduplication(
    providers: FakeProviders, http: httpx.AsyncClient
) -> None:
    client = LemlistClient(http, base(providers), LEMLIST_KEY)
    by_email, by_profile = touch(0), touch(1, Channel.LINKEDIN, LinkedInAction.MESSAGE)
    outcomes = await client.send([by_email, by_profile])
    again = await client.send([by_email])

    first, second, repeated = providers.requests
    for request in providers.requests:
        assert (request.method, request.path) == ("POST", "/api/campaigns/cam_123/leads/")
        assert request.query == {"deduplicate": ["true"]}
        scheme, _, encoded = request.headers["authorization"].partition(" ")
        assert scheme == "Basic"
        assert base64.b64decode(encoded).decode() == f":{LEMLIST_KEY}"  # the key as password
    lead = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Engines",
        "title": "CTO",
        "seats": 3,
    }  # the list-valued variable is left out
    assert first.payload == lead | {
        "email": by_email.address,
        "enrollmentId": str(by_email.enrollment_id),
    }
    assert second.payload == lead | {
        "email": "Ada@Example.com",
        "linkedinUrl": by_profile.address,
        "enrollmentId": str(by_profile.enrollment_id),
    }
    assert repeated.payload == first.payload
    ids = [m.message_id for m in providers.taken("lemlist")]
    assert [(o.kind, o.message_id) for o in outcomes] == [(Kind.SENT, i) for i in ids]
    # Already in the campaign: lemlist refuses the copy, which counts as sent.
    assert len(providers.taken("lemlist")) == 2
    assert [o.kind for o in again] == [Kind.SENT]


# --- a wrong credential -------------------------------------------------------------------------

WRONG = {
    "postmark": "wrong-pm-token-4f1c9a",
    "phantombuster": "wrong-pb-key-77d0e2",
    "lemlist": "wrong-ll-key-b83f51",
}


async def test_a_wrong_credential_is_retried_and_never_shown(
    providers: FakeProviders,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    url = base(providers)
    outcomes = [
        *await PostmarkClient(http, url, WRONG["postmark"]).send([touch(0)]),
        *await PostmarkClient(http, url, WRONG["postmark"]).send([touch(1), touch(2)]),
        *await PhantomBusterClient(http, url, WRONG["phantombuster"]).send(
            [touch(3, Channel.LINKEDIN, LinkedInAction.PROFILE_VISIT)]
        ),
        *await LemlistClient(http, url, WRONG["lemlist"]).send([touch(4)]),
    ]

    assert providers.auth_failures == 4  # every request reached the provider and was refused
    assert providers.taken() == []
    assert [o.kind for o in outcomes] == [Kind.RETRY] * 5
    assert all(o.error for o in outcomes), outcomes
    secrets = [
        *WRONG.values(),
        *(base64.b64encode(f":{v}".encode()).decode() for v in WRONG.values()),
    ]
    shown = [
        *(f"{o.error_code} {o.error}" for o in outcomes),
        caplog.text,
        *(str(r.__dict__) for r in caplog.records),
        *capsys.readouterr(),
    ]
    assert caplog.records, "the HTTP client logged the requests at DEBUG"
    for secret in secrets:
        for text in shown:
            assert secret not in text
