"""The sender: a long-running loop that claims due touches, sends them through the providers
with up to ``concurrency`` requests in flight, and records what became of them.

Any number of senders share the work through PostgreSQL alone: claims skip each other's rows,
leases say who holds what, and a touch taken over from a dead sender is resolved by asking the
provider (or marked unknown) rather than sent again. A stop asked for (SIGTERM) finishes the
requests in flight, records them, hands back the touches not yet started, and returns.

Between claims the loop sleeps until the next work appears (a due time, a retry, a lease, a
window opening), or until a NOTIFY says something became due, never polling the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.driver import DriverConnection
from app.db.engine import RETRYABLE_SQLSTATES
from app.db.errors import DATABASE_ERRORS, is_database_unavailable
from app.db.notifications import Notifications
from app.domain.enums import Provider
from app.observability import metrics
from app.observability.logs import get_logger
from app.providers.clients import CREDENTIAL_SETTING, Clients
from app.providers.outbound import CannotAsk, Client, Kind, Outcome, Touch
from app.services.sending import claims
from app.services.sending.claims import Claimed
from app.services.sending.record import Recorded, Result, Timing, Verdict, record
from app.services.sending.schedule import Plan, outlook, plan
from app.services.sending.wake import CHANNEL
from app.worker.touches import prepare

log = get_logger("sender")
logger = logging.getLogger("campaign_api.sender")
T = TypeVar("T")

PLAN_TTL_S = 1.0
"""A plan (which instances may send) is reused this long unless a NOTIFY arrives."""
RECORD_BATCH = 500
"""A recording transaction takes chunks until it has this many results (a claim's chunk of
500 is one transaction on its own: two recorders splitting it, and the claims that followed
the room each freed, ran the database's per-statement work on batches of 160 on average)."""
RECORD_LINGER_S = 0.01
RECORDERS = 3
"""Outcome transactions in flight at once: while one commits, the next batches are written.
Recording is the longest step of a batch's way: with batches of 500 against a fake provider
answering in 20 ms, three recorders sent more per second than two, and one far fewer
(bench.sender rounds interleaved in one run)."""
HELD_BATCHES = 4
"""How many claim batches a sender may hold unrecorded: enough to keep the provider calls,
the claims and the recording all busy at once. A claim waits until a whole batch fits."""
CLAIM_LINGER_S = 0.05
"""After a claim that found less than a batch due, how long more work may fall due before the
next claim: a steady trickle (4,500 touches a second, each due a moment after the last) was
otherwise claimed a few touches at a time, and the per-claim cost, paid hundreds of times a
second, left the sender behind its work. It adds at most this to a touch's wait."""
RETRY_FLOOR_S = 1.0
"""How soon to look again when due work exists that could not be claimed (a daily limit
with room for fewer touches than a step has, say)."""


@dataclass(frozen=True, slots=True)
class SenderOptions:
    concurrency: int
    batch: int
    lease_s: float
    idle_s: float
    timing: Timing


def sender_identity() -> str:
    """Who holds a claim: host, process and a random suffix (a restarted process is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SenderLoop:
    def __init__(
        self,
        engine: AsyncEngine,
        dsn: str,
        clients: Clients,
        options: SenderOptions,
        identity: str | None = None,
    ) -> None:
        self._engine = engine
        self._dsn = dsn
        self._clients = clients
        self._options = options
        self.identity = identity or sender_identity()
        self._slots = asyncio.Semaphore(options.concurrency)
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._results: asyncio.Queue[list[Result]] = asyncio.Queue()
        """A send chunk's results, kept together for one recording transaction."""
        self._held = 0
        """Touches claimed and not yet recorded."""
        self._stopping = False
        self._plan: Plan | None = None
        self._planned_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[Provider] = set()
        self._failure: BaseException | None = None
        self._marked_before_leaving = [
            provider
            for provider, client in clients.by_provider.items()
            if not client.reconcilable and not client.idempotent
        ]
        """Providers that can neither be asked nor sent a touch twice: each touch is marked
        uncertain just before it leaves (``claims.mark_leaving``), so that a touch a dead
        sender never started is not left ``unknown``."""

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        listener = Notifications(self._dsn, "sender")
        listener.on(CHANNEL, lambda _: self._wake.set())
        # Anything announced while it was not listening: the sender re-reads what is due.
        listener.on_connected(self._wake.set)
        listener.start()
        recorders = [
            asyncio.create_task(self._record_forever(), name=f"sender-recorder-{n}")
            for n in range(RECORDERS)
        ]
        heartbeat = asyncio.create_task(self._renew_forever(), name="sender-heartbeat")
        stopper = asyncio.create_task(self._on_stop(stop), name="sender-stop")
        log.info("sender_started", sender=self.identity, concurrency=self._options.concurrency)
        outage_delay = 0.5
        try:
            while not stop.is_set():
                for recorder in recorders:
                    if recorder.done():
                        recorder.result()  # a recorder that died takes the sender down
                if self._failure is not None:
                    raise self._failure
                try:
                    claimed = await self._claim_round()
                    if not claimed:
                        await self._idle(stop)
                    elif claimed < self._options.batch:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), CLAIM_LINGER_S)
                    outage_delay = 0.5
                except DATABASE_ERRORS as exc:
                    if not is_database_unavailable(exc):
                        raise
                    logger.warning("sender: the database is unavailable (%s)", type(exc).__name__)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), outage_delay)
                    outage_delay = min(outage_delay * 2, 10.0)
        finally:
            self._stopping = True
            stopper.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._drain(recorders)
            for task in (*recorders, heartbeat):
                task.cancel()
            ended = await asyncio.gather(*recorders, heartbeat, return_exceptions=True)
            await listener.close()
            log.info("sender_stopped", sender=self.identity)
            failures = [outcome for outcome in ended if isinstance(outcome, Exception)]
            if failures:
                raise failures[0]

    async def _drain(self, recorders: list[asyncio.Task[None]]) -> None:
        """Wait until every result is recorded, or until no recorder is left to record them:
        then the sender exits with the recorders' error, and the leases of the touches it still
        held run out for another sender to take over (waiting would hang it forever, renewing
        those leases)."""
        joined = asyncio.ensure_future(self._results.join())
        try:
            alive = {recorder for recorder in recorders if not recorder.done()}
            while alive and not joined.done():
                await asyncio.wait({joined, *alive}, return_when=asyncio.FIRST_COMPLETED)
                alive = {recorder for recorder in alive if not recorder.done()}
        finally:
            joined.cancel()

    async def _on_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._wake.set()
        self._progress.set()

    async def _claim_round(self) -> int:
        """Claim what fits and start sending it; returns how many touches were claimed."""
        batch = self._options.batch
        if not self._room_for_a_batch() or self._stopping:
            return 0
        current = await self._current_plan()
        claimed = await self._transaction(lambda db: self._claim(db, current, batch))
        if claimed:
            self._held += len(claimed)
            self._start(current, claimed)
        return len(claimed)

    async def _claim(self, db: DriverConnection, current: Plan, batch: int) -> list[Claimed]:
        ids = current.instance_ids
        lease, me = self._options.lease_s, self.identity
        found = await claims.claim_abandoned(db, ids, batch, me, lease, self._marked_before_leaving)
        found += await claims.claim_retries(db, ids, batch - len(found), me, lease)
        found += await claims.claim_due(db, current.eligible, batch - len(found), me, lease)
        return found

    async def _current_plan(self) -> Plan:
        loop = asyncio.get_running_loop()
        if self._plan is None or self._wake.is_set() or loop.time() - self._planned_at > PLAN_TTL_S:
            self._wake.clear()
            self._plan = await self._transaction(self._refresh)
            self._planned_at = loop.time()
            self._report_blocked(self._plan)
        return self._plan

    async def _refresh(self, db: DriverConnection) -> Plan:
        """A new plan; queued touches whose enrollment or instance stopped are cancelled on
        the way (a webhook that stops an enrollment does not look at its dispatches)."""
        await claims.cancel_stopped(db)
        return await plan(db, self._can_send, self._runs_itself)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep until the next work, a NOTIFY, progress that frees room, or the stop."""
        if self._stopping:
            return
        if not self._room_for_a_batch():
            delay = self._options.idle_s
        else:
            current = await self._current_plan()
            seen = await self._transaction(lambda db: outlook(db, current))
            metrics.send_due_backlog.set(seen.backlog)
            delay = self._delay_until(seen.next_at, current.now)
        self._progress.clear()
        waits = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._progress.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    def _room_for_a_batch(self) -> bool:
        """Whether a whole batch may be claimed now. Claiming only what the last recording
        freed would fragment the pipeline into small claims, sends and recordings, and the
        database's cost per statement, paid per batch, would be paid several times over."""
        return self._held + self._options.batch <= HELD_BATCHES * self._options.batch

    def _delay_until(self, next_at: datetime | None, now: datetime) -> float:
        if next_at is None:
            return self._options.idle_s
        seconds = (next_at - now).total_seconds()
        if seconds <= 0:
            return RETRY_FLOOR_S
        return min(seconds, self._options.idle_s)

    # -- sending -------------------------------------------------------------------------

    def _can_send(self, provider: Provider) -> bool:
        return self._clients.get(provider) is not None

    def _runs_itself(self, provider: Provider) -> bool:
        return provider is Provider.LEMLIST and not self._clients.is_dry_run(provider)

    def _start(self, current: Plan, claimed: Sequence[Claimed]) -> None:
        groups: dict[Provider, list[Claimed]] = defaultdict(list)
        for touch in claimed:
            groups[touch.provider].append(touch)
        for provider, touches in groups.items():
            client = self._clients.get(provider)
            size = client.batch_size if client is not None else 1
            for start in range(0, len(touches), size):
                chunk = touches[start : start + size]
                task = asyncio.create_task(self._send_chunk(current, client, chunk))
                self._tasks.add(task)
                task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A send task that failed takes the sender down (its touches' results are lost, and
        the sender would wait for them forever); their leases run out and another sender
        takes them over."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
            self._wake.set()

    async def _send_chunk(
        self, current: Plan, client: Client | None, chunk: Sequence[Claimed]
    ) -> None:
        async with self._slots:
            if self._stopping:
                results = [Result(t, Verdict.RELEASED) for t in chunk]
            elif client is None:
                results = [
                    Result(t, Verdict.RETRY, error_code="NO_CREDENTIALS", error="no client")
                    for t in chunk
                ]
            else:
                results = await self._attempt(current, client, chunk)
        self._results.put_nowait(results)

    async def _attempt(
        self, current: Plan, client: Client, chunk: Sequence[Claimed]
    ) -> list[Result]:
        results: dict[uuid.UUID, Result] = {}
        prepared: list[tuple[Claimed, Touch]] = []
        for claimed in chunk:
            touch_or_result = prepare(current, claimed)
            if isinstance(touch_or_result, Result):
                results[claimed.dispatch_id] = touch_or_result
            else:
                prepared.append((claimed, touch_or_result))
        # Touches that may already be at the provider are settled first, side by side: after
        # a sender died, a whole batch of them may need asking. The others need no task each
        # (500 tasks a batch were a twelfth of the sender's CPU).
        uncertain = [(claimed, touch) for claimed, touch in prepared if claimed.uncertain]
        answers = await asyncio.gather(
            *(self._settle_uncertain(client, claimed, touch) for claimed, touch in uncertain)
        )
        settled = {c.dispatch_id: r for (c, _), r in zip(uncertain, answers, strict=True)}
        ready: list[tuple[Claimed, Touch]] = []
        for claimed, touch in prepared:
            if claimed.uncertain:
                result = settled[claimed.dispatch_id]
            else:
                result = None if claimed.sendable else Result(claimed, Verdict.CANCELLED)
            if result is not None:
                results[claimed.dispatch_id] = result
            else:
                ready.append((claimed, touch))
        if ready:
            ready = await self._still_wanted(ready, results)
        if ready:
            outcomes = await client.send([touch for _, touch in ready])
            for (claimed, _), outcome in zip(ready, outcomes, strict=True):
                results[claimed.dispatch_id] = self._result(client, claimed, outcome)
        return [results[c.dispatch_id] for c in chunk]

    async def _still_wanted(
        self, ready: list[tuple[Claimed, Touch]], results: dict[uuid.UUID, Result]
    ) -> list[tuple[Claimed, Touch]]:
        """The touches that may still leave now (``claims.standing``): one claimed before a
        pause goes back to the queue, as does every one when a stop was asked for; one whose
        enrollment or instance stopped since is cancelled."""
        ids = [c.dispatch_id for c, _ in ready]
        mark = ready[0][0].provider in self._marked_before_leaving

        async def check(db: DriverConnection) -> dict[uuid.UUID, tuple[str, str]]:
            found = await claims.standing(db, self.identity, ids)
            if mark and not self._stopping:
                sending = [i for i in ids if found.get(i, ("stop", ""))[0] == "send"]
                await claims.mark_leaving(db, self.identity, sending)
            return found

        try:
            found = await self._transaction(check)
        except DATABASE_ERRORS as exc:
            if not is_database_unavailable(exc):
                raise
            # Not checked, so not sent: back to the queue, to be tried again.
            for claimed, _ in ready:
                results[claimed.dispatch_id] = Result(
                    claimed, Verdict.RELEASED, uncertain=claimed.uncertain
                )
            return []
        leaving = []
        for claimed, touch in ready:
            verdict, why = found.get(claimed.dispatch_id, ("stop", "the touch is gone"))
            if verdict == "lost":
                # Another sender holds it now; recording this is a no-op (guarded by the lease).
                results[claimed.dispatch_id] = Result(claimed, Verdict.RELEASED)
            elif verdict == "stop":
                results[claimed.dispatch_id] = Result(
                    claimed, Verdict.CANCELLED, error_code="STOPPED", error=why
                )
            elif verdict == "hold" or self._stopping:
                results[claimed.dispatch_id] = Result(
                    claimed, Verdict.RELEASED, uncertain=claimed.uncertain
                )
            else:
                leaving.append((claimed, touch))
        return leaving

    async def _settle_uncertain(
        self, client: Client, claimed: Claimed, touch: Touch
    ) -> Result | None:
        """For a touch that may already be at the provider: a result without sending, or None
        when it should be sent (it is not there, or sending twice is harmless)."""
        if client.reconcilable:
            try:
                found = await client.find(touch)
            except CannotAsk as exc:
                return Result(
                    claimed,
                    Verdict.RETRY,
                    error_code="RECONCILE_FAILED",
                    error=f"could not ask {client.provider.value}: {exc}",
                    uncertain=True,
                )
            if found is not None:
                metrics.sends_total.labels(claimed.provider.value, "reconciled").inc()
                return self._result(client, claimed, Outcome.sent(found))
            return None if claimed.sendable else Result(claimed, Verdict.CANCELLED)
        if client.idempotent and claimed.sendable:
            return None
        return Result(
            claimed,
            Verdict.UNKNOWN,
            error_code="INTERRUPTED",
            error=f"interrupted; {client.provider.value} cannot be asked whether it took the"
            " touch, so it is not resent (retryDispatch sends it again)",
        )

    def _result(self, client: Client, claimed: Claimed, outcome: Outcome) -> Result:
        dry_run = self._clients.is_dry_run(claimed.provider)
        if outcome.kind is Kind.SENT:
            return Result(
                claimed,
                Verdict.SENT,
                message_id=outcome.message_id,
                dry_run=dry_run,
                records_event=not self._runs_itself(claimed.provider),
            )
        if outcome.kind is Kind.FAILED:
            return Result(
                claimed, Verdict.FAILED, error_code=outcome.error_code, error=outcome.error
            )
        if outcome.kind is Kind.RETRY or client.reconcilable or client.idempotent:
            return Result(
                claimed,
                Verdict.RETRY,
                error_code=outcome.error_code,
                error=outcome.error,
                retry_after=outcome.retry_after,
                uncertain=outcome.kind is Kind.UNCERTAIN,
            )
        return Result(claimed, Verdict.UNKNOWN, error_code=outcome.error_code, error=outcome.error)

    # -- recording -----------------------------------------------------------------------

    async def _record_forever(self) -> None:
        while True:
            chunks = [await self._results.get()]
            batch = list(chunks[0])
            deadline = asyncio.get_running_loop().time() + RECORD_LINGER_S
            while len(batch) < RECORD_BATCH:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    chunks.append(await asyncio.wait_for(self._results.get(), timeout))
                except TimeoutError:
                    break
                batch.extend(chunks[-1])
            try:
                recorded = await self._persist(batch)
            finally:
                for _ in chunks:
                    self._results.task_done()
                self._held -= len(batch)
                self._progress.set()
            self._observe(len(batch), recorded)

    async def _persist(self, batch: list[Result]) -> list[Recorded]:
        """Record ``batch``, retrying while the database is away: a result not recorded would
        leave its touch to be resolved as uncertain by whoever takes the lease over."""
        delay = 0.2
        while True:
            try:
                return await self._transaction(
                    lambda db: record(db, self.identity, batch, self._options.timing),
                    custom_plans=True,
                )
            except DATABASE_ERRORS as exc:
                if not is_database_unavailable(exc):
                    raise
                logger.warning("sender cannot record outcomes (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _observe(self, submitted: int, recorded: Sequence[Recorded]) -> None:
        if len(recorded) < submitted:
            log.warning(
                "claims_lost",
                sender=self.identity,
                touches=submitted - len(recorded),
                hint="another sender took them over after their lease ran out; raise"
                " CAMPAIGN_SEND_LEASE_S if this sender is merely slow",
            )
        logging_sends = logger.isEnabledFor(logging.INFO)
        for item in recorded:
            result, touch = item.result, item.result.touch
            provider = touch.provider.value
            metrics.labelled(metrics.sends_total, provider, result.verdict.value).inc()
            if result.verdict is Verdict.SENT:
                metrics.labelled(metrics.send_lag_seconds, provider).observe(max(item.lag_s, 0.0))
            if not logging_sends:
                continue
            log.info(
                "send",
                sender=self.identity,
                dispatch_id=str(touch.dispatch_id),
                enrollment_id=str(touch.enrollment_id),
                instance_id=str(touch.instance_id),
                provider=provider,
                channel=touch.channel.value,
                step_number=touch.step_number,
                attempt=touch.attempts,
                outcome=result.verdict.value,
                message_id=result.message_id,
                error_code=result.error_code,
                dry_run=result.dry_run or None,
            )

    async def _renew_forever(self) -> None:
        """Renew this sender's leases at a third of their length while it holds any."""
        while True:
            await asyncio.sleep(self._options.lease_s / 3)
            if self._held:
                with contextlib.suppress(*DATABASE_ERRORS):
                    await self._transaction(
                        lambda db: claims.renew_leases(db, self.identity, self._options.lease_s)
                    )

    # -- plumbing ------------------------------------------------------------------------

    async def _transaction(
        self, work: Callable[[DriverConnection], Awaitable[T]], custom_plans: bool = False
    ) -> T:
        """``work`` in one transaction on a pooled connection, again if PostgreSQL chose it
        as a deadlock victim (rolled back, so safe to repeat).

        ``custom_plans``: plan each of ``work``'s statements for its arguments
        (``DriverConnection.under``'s ``fresh_plans``). After five executions PostgreSQL may
        settle on a generic plan; for the recording statements (hundreds of rows in arrays)
        the generic plan took twice the database time, while the claim runs best on its
        generic plan (measured with sequential batches of 500).
        """
        for attempt in range(3):
            try:
                async with self._engine.connect() as connection:
                    db = await DriverConnection.under(connection, fresh_plans=custom_plans)
                    async with db.driver.transaction():
                        return await work(db)
            except asyncpg.PostgresError as exc:
                if getattr(exc, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _report_blocked(self, current: Plan) -> None:
        for provider in Provider:
            waiting = current.blocked.get(provider, [])
            if provider is not Provider.API:
                metrics.send_blocked.labels(provider.value).set(len(waiting))
            if waiting and provider not in self._warned:
                self._warned.add(provider)
                log.warning(
                    "provider_without_credentials",
                    provider=provider.value,
                    setting=CREDENTIAL_SETTING.get(provider),
                    instances_waiting=len(waiting),
                )
        for instance_id, problem in current.misconfigured.items():
            log.warning("instance_config_invalid", instance_id=str(instance_id), problem=problem)
