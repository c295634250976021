"""Step numbers under concurrency, on real connections (never one shared session).

Two writers asking for the same step number at once: exactly one wins, the other gets
STEP_CONFLICT (never a 500), and one row is stored. The service serializes writers on the
template row; the partial unique index is the final guard when a check slips (simulated here by
disabling the service's pre-check).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.db.engine import run_in_transaction
from app.domain.enums import ErrorCode, LinkedInAction
from app.domain.errors import DomainError
from app.models import EmailStep, LinkedInStep
from app.services import templates as service
from app.services.integrity import constraint_name
from tests.locks import backend_pid, wait_for_lock_wait
from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    ADD_LINKEDIN_STEP,
    add_email_step,
    assert_refused,
    count_rows,
    create_template,
    mutate,
    read_template,
)

ROUNDS = 10


Call = Callable[[], Awaitable[dict[str, Any]]]


async def _race(calls: list[Call]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(call() for call in calls)))


def _split(results: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    won = [r for r in results if r["errors"] == []]
    lost = [r for r in results if r["errors"] != []]
    return won, lost


async def _active_with_number(app: Starlette, table: str, template_id: str, number: int) -> int:
    return await count_rows(
        app,
        table,
        "template_id = CAST(:t AS uuid) AND step_number = :n AND is_active",
        t=template_id,
        n=number,
    )


def _add_email(
    client: httpx.AsyncClient, key: str, template_id: str, number: int, who: int
) -> Call:
    variables = {
        "templateId": template_id,
        "input": {"stepNumber": number, "body": f"Racer {who} wants step {number}"},
    }
    return lambda: mutate(client, key, ADD_EMAIL_STEP, "addEmailStep", variables)


def _add_linkedin(
    client: httpx.AsyncClient, key: str, template_id: str, data: dict[str, Any]
) -> Call:
    variables = {"templateId": template_id, "input": data}
    return lambda: mutate(client, key, ADD_LINKEDIN_STEP, "addLinkedInStep", variables)


async def test_concurrent_add_email_step_one_wins(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    for number in range(1, ROUNDS + 1):
        results = await _race(
            [_add_email(client, write_key, template["id"], number, who) for who in (1, 2)]
        )
        won, lost = _split(results)
        assert (len(won), len(lost)) == (1, 1), results
        assert_refused(lost[0], "step", "STEP_CONFLICT", ["input", "stepNumber"])
        assert await _active_with_number(app, "email_steps", template["id"], number) == 1
        assert await count_rows(app, "email_steps", "step_number = :n", n=number) == 1
    stored = await read_template(client, write_key, template["id"])
    assert [s["stepNumber"] for s in stored["emailSteps"]] == list(range(1, ROUNDS + 1))


async def test_concurrent_add_linkedin_step_one_wins(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    for number in range(1, ROUNDS // 2 + 1):
        calls = [
            _add_linkedin(client, write_key, template["id"], {"stepNumber": number} | data)
            for data in (
                {"action": "PROFILE_VISIT"},
                {"action": "MESSAGE", "message": "Hello!"},
            )
        ]
        won, lost = _split(await _race(calls))
        assert (len(won), len(lost)) == (1, 1)
        assert_refused(lost[0], "step", "STEP_CONFLICT", ["input", "stepNumber"])
        assert await _active_with_number(app, "linkedin_steps", template["id"], number) == 1


class _Overlap:
    """Wraps service.add_step so both racers are inside their transactions before either goes
    on: proves the two requests really overlap."""

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.inside = 0
        self.most_inside = 0
        self.real = service.add_step

    async def __call__(self, session: Any, *args: Any) -> Any:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            async with asyncio.timeout(5):
                await self.barrier.wait()
            return await self.real(session, *args)
        finally:
            self.inside -= 1


@pytest.mark.parametrize("precheck", [True, False], ids=["with-precheck", "index-only"])
async def test_overlapping_add_requests_one_wins(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    monkeypatch: pytest.MonkeyPatch,
    precheck: bool,
) -> None:
    """Both requests hold an open transaction at the same time. Without the service's
    "number taken" pre-check, the partial unique index alone must still turn the loser into
    STEP_CONFLICT (not a 500, not a GraphQL error)."""
    template = await create_template(client, write_key)
    overlap = _Overlap(2)
    monkeypatch.setattr(service, "add_step", overlap)
    if not precheck:

        async def never_taken(*args: Any, **kwargs: Any) -> bool:
            return False

        monkeypatch.setattr(service, "_number_taken", never_taken)

    for number in range(1, 4):
        results = await _race(
            [_add_email(client, write_key, template["id"], number, who) for who in (1, 2)]
        )
        assert overlap.most_inside == 2
        won, lost = _split(results)
        assert (len(won), len(lost)) == (1, 1), results
        assert_refused(lost[0], "step", "STEP_CONFLICT", ["input", "stepNumber"])
        assert await _active_with_number(app, "email_steps", template["id"], number) == 1


MOVE_EMAIL_STEP = """
mutation($id: ID!, $n: Int!) {
  updateEmailStep(id: $id, input: {stepNumber: $n}) {
    step { id stepNumber } errors { field code message }
  }
}
"""


def _move_email(client: httpx.AsyncClient, key: str, step_id: str, number: int) -> Call:
    variables = {"id": step_id, "n": number}
    return lambda: mutate(client, key, MOVE_EMAIL_STEP, "updateEmailStep", variables)


async def test_concurrent_updates_to_the_same_number_one_wins(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    for round_ in range(ROUNDS // 2):
        a = await add_email_step(client, write_key, template["id"], stepNumber=100 + 3 * round_)
        b = await add_email_step(client, write_key, template["id"], stepNumber=101 + 3 * round_)
        target = 102 + 3 * round_
        calls = [_move_email(client, write_key, step["id"], target) for step in (a, b)]
        won, lost = _split(await _race(calls))
        assert (len(won), len(lost)) == (1, 1)
        assert_refused(lost[0], "step", "STEP_CONFLICT", ["input", "stepNumber"])
        assert await _active_with_number(app, "email_steps", template["id"], target) == 1


# --- service level: two sessions from the app's sessionmaker --------------------------------


def _values(number: int, who: str) -> dict[str, Any]:
    return {"step_number": number, "body": f"{who} wants step {number}"}


def _message_step(message: str) -> dict[str, Any]:
    return {"step_number": 1, "action": LinkedInAction.MESSAGE, "message": message}


async def _template_id(client: httpx.AsyncClient, key: str) -> str:
    return str((await create_template(client, key))["id"])


@pytest.mark.parametrize("precheck", [True, False], ids=["with-precheck", "index-only"])
async def test_second_writer_waits_then_gets_step_conflict(
    app: Starlette,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    write_key: str,
    monkeypatch: pytest.MonkeyPatch,
    precheck: bool,
) -> None:
    """Writer A has added step 1 but not committed; writer B (its own session and connection)
    must wait, then see A's row and be refused with STEP_CONFLICT: via the service's check, or,
    with the check disabled, via the unique index."""
    if not precheck:

        async def never_taken(*args: Any, **kwargs: Any) -> bool:
            return False

        monkeypatch.setattr(service, "_number_taken", never_taken)
    template_id = await _template_id(client, write_key)
    sessionmaker = app.state.sessionmaker

    async with sessionmaker() as a, a.begin():
        await service.add_step(a, EmailStep, template_id, _values(1, "A"))
        b = asyncio.create_task(
            run_in_transaction(
                sessionmaker, lambda s: service.add_step(s, EmailStep, template_id, _values(1, "B"))
            )
        )
        await wait_for_lock_wait(engine, blocked_by=await backend_pid(a))
        assert not b.done(), "B did not wait for A's transaction"
    with pytest.raises(DomainError) as refused:
        await asyncio.wait_for(b, 10)
    assert refused.value.code is ErrorCode.STEP_CONFLICT
    assert refused.value.field == ("step_number",)
    assert await count_rows(app, "email_steps") == 1
    async with sessionmaker() as check:
        bodies = (await check.scalars(select(EmailStep.body))).all()
    assert bodies == ["A wants step 1"]


async def test_second_writer_proceeds_when_the_first_rolls_back(
    app: Starlette, engine: AsyncEngine, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await _template_id(client, write_key)
    sessionmaker = app.state.sessionmaker
    async with sessionmaker() as a:
        await a.begin()
        await service.add_step(a, LinkedInStep, template_id, _message_step("from A"))
        b = asyncio.create_task(
            run_in_transaction(
                sessionmaker,
                lambda s: service.add_step(s, LinkedInStep, template_id, _message_step("from B")),
            )
        )
        await wait_for_lock_wait(engine, blocked_by=await backend_pid(a))
        assert not b.done()
        await a.rollback()
    step_id = await asyncio.wait_for(b, 10)
    async with sessionmaker() as check:
        stored = (await check.execute(select(LinkedInStep.id, LinkedInStep.message))).all()
    assert [tuple(row) for row in stored] == [(step_id, "from B")]


async def test_unique_index_is_the_final_guard(
    app: Starlette, engine: AsyncEngine, client: httpx.AsyncClient, write_key: str
) -> None:
    """Bypassing the service entirely: two raw inserts of the same active step number from two
    connections. The second blocks on the first's uncommitted index entry, then fails on the
    partial unique index the service translates into STEP_CONFLICT."""
    template_id = uuid.UUID(await _template_id(client, write_key))
    sessionmaker = app.state.sessionmaker

    async def insert(session: Any, who: str) -> None:
        session.add(EmailStep(template_id=template_id, step_number=7, body=f"{who} body text"))
        await session.flush()

    async with sessionmaker() as a, a.begin():
        await insert(a, "A")
        b = asyncio.create_task(run_in_transaction(sessionmaker, lambda s: insert(s, "B")))
        await wait_for_lock_wait(engine, blocked_by=await backend_pid(a))
        assert not b.done()
    with pytest.raises(IntegrityError) as violated:
        await asyncio.wait_for(b, 10)
    assert constraint_name(violated.value) == "uq_email_steps_template_id_step_number_active"
    assert await count_rows(app, "email_steps") == 1

    # A removed (inactive) step does not hold its number.
    async with sessionmaker() as s, s.begin():
        step = await s.scalar(select(EmailStep))
        step.is_active = False
    await run_in_transaction(sessionmaker, lambda s: insert(s, "C"))
    assert await count_rows(app, "email_steps", "step_number = 7") == 2
    assert await count_rows(app, "email_steps", "step_number = 7 AND is_active") == 1
