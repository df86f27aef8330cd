"""The embedded broker: handlers run inside ``crm2 serve``, no server needed.

Durability comes from the log, not from memory: each handler has a cursor
(where it joined), and at start every relayed event after it that the handler
has neither applied nor dead-lettered is queued again. So a process that dies
with work in its queue loses nothing; it redoes it when it starts.

A handler with ``handle_batch`` gets the events of a relay batch it takes as one
job, applied in one transaction (``handler_batches``); what that leaves (or a batch
that failed) is queued again one event per job.

A job counts its failures (``attempt``, against the handler's ``max_retries``) and
its waits (``waits``: an earlier event of its subject is pending) apart, and a wait
never makes a dead letter. A waiting job is parked until a job of the same handler
and subject settles here (applied, held or dead-lettered), which queues the
earliest waiter at once: a burst on one record moves at the pace of its handler.
Each parked job also looks again after ``waits.MAX_WAIT_SECONDS`` in case its
predecessor is handled elsewhere (another process relayed it); polling sooner
would fill the queue with a burst's waiters and slow the one that can go.

A job whose subject has an earlier event being applied here right now is parked
before it asks the database anything: its claim could only fail (that event is not
applied yet), and a burst on one record would otherwise cost a failed transaction
per event and per retry (bench scenario 12a: most of the process's handler time).
Likewise one batch per handler runs at a time; batches that come meanwhile are
merged and queued when it ends, so a subject's events in consecutive relay
batches are claimed together instead of waiting for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import takewhile
from typing import TYPE_CHECKING

from sqlalchemy import and_, exists, select
from sqlmodel import col

from crm2_core.events.envelope import Envelope
from crm2_core.events.handler_batches import apply_batch, batches_for
from crm2_core.events.handlers import (
    HandlerRegistry,
    Pairs,
    RegisteredHandler,
    apply_or_dead_letter,
    backoff_seconds,
    register_cursors,
)
from crm2_core.events.models import AppliedEvent, DeadLetter, EventRecord, HandlerCursor
from crm2_core.events.waits import MAX_WAIT_SECONDS, Waiting, note_wait

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Events for one handler: one event (with its failures and waits so far), or a batch
    for ``handle_batch``."""

    handler: RegisteredHandler
    events: tuple[Envelope, ...]
    attempt: int = 0
    waits: int = 0
    # queued by its parking timer: it asks the database whatever runs here (so a lost
    # wake-up or a stale mark never holds an event for good)
    overdue: bool = False

    @property
    def fresh(self) -> bool:
        """Neither failed nor waited yet."""
        return not self.attempt and not self.waits

    @classmethod
    def split(cls, handler: RegisteredHandler, events: Sequence[Envelope]) -> list[Job]:
        return [cls(handler, tuple(run)) for run in batches_for(handler, events)]


class MemoryBroker:
    def __init__(
        self, context: AppContext, handlers: HandlerRegistry, concurrency: int = 4
    ) -> None:
        self.context = context
        self.handlers = handlers
        self.concurrency = concurrency
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.Task[None]] = set()
        # (handler, subject) -> waiting jobs by position, each with its timer
        self._waiting: dict[tuple[str, str], dict[int, tuple[Job, asyncio.Task[None]]]] = {}
        # (handler, subject) -> positions of its events being applied here now, and of
        # its parked events queued again (by a wake or their timer), not yet started
        self._running: dict[tuple[str, str], set[int]] = {}
        self._due: dict[tuple[str, str], set[int]] = {}
        # handlers with a batch running, and the events of batches that came meanwhile
        self._batching: set[str] = set()
        self._later_batches: dict[str, list[Envelope]] = {}
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        await register_cursors(self.context, self.handlers)
        for job in await pending_jobs(self.context, self.handlers):
            self._queue.put_nowait(job)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"crm2-handlers-{i}")
            for i in range(self.concurrency)
        ]

    async def deliver(self, events: Sequence[Envelope], to: Pairs | None = None) -> None:
        for handler in self.handlers.handlers.values():
            wanted = [
                event
                for event in events
                if handler.wants(event.type) and (to is None or to(handler, event))
            ]
            for job in Job.split(handler, wanted):
                self._queue.put_nowait(job)

    async def deliver_to(self, handler: RegisteredHandler, event: Envelope) -> None:
        self._queue.put_nowait(Job(handler, (event,)))

    async def drain(self, within: float = 10.0) -> None:
        """Wait until every queued and retrying job is done (tests, the CLI)."""
        async with asyncio.timeout(within):
            while True:
                await self._queue.join()
                if not self._timers:
                    return
                await asyncio.wait(set(self._timers))

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Let handlers that are running finish (cancelling a query mid-flight can
        wedge its connection), then stop; queued work is redone at next start."""
        self._stopping = True
        for task in self._timers:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        for task in [*self._tasks, *self._timers]:
            task.cancel()
        for task in [*self._tasks, *self._timers]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._timers = [], set()
        self._waiting.clear()
        self._running.clear()
        self._due.clear()
        self._batching.clear()
        self._later_batches.clear()

    async def _work(self) -> None:
        while not self._stopping:
            job = await self._queue.get()
            self._busy += 1
            self._idle.clear()
            try:
                await self._run(job)
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
                self._queue.task_done()

    async def _run(self, job: Job) -> None:
        if len(job.events) > 1:
            await self._run_batch(job)
            return
        handler, event = job.handler, job.events[0]
        key, position = (handler.id, event.subject), event.position or 0
        _drop(self._due, key, position)
        if not job.overdue and self._behind(key, position):
            self._wait_later(job, MAX_WAIT_SECONDS)  # woken when the earlier one settles
            return
        settled = False
        self._running.setdefault(key, set()).add(position)
        try:
            await apply_or_dead_letter(self.context, handler, event, job.attempt)
            settled = True
        except Waiting:
            note_wait(handler.id, event.id, job.waits + 1)
            if not self._stopping:
                again = Job(handler, job.events, job.attempt, job.waits + 1)
                self._wait_later(again, MAX_WAIT_SECONDS)
        except Exception:
            if not self._stopping:
                again = Job(handler, job.events, job.attempt + 1, job.waits)
                self._retry_later(again, backoff_seconds(handler, job.attempt))
        finally:
            _drop(self._running, key, position)
        if settled:
            self._wake(handler.id, event.subject)

    async def _run_batch(self, job: Job) -> None:
        handler = job.handler
        if handler.id in self._batching:
            self._later_batches.setdefault(handler.id, []).extend(job.events)
            for event in job.events:  # later events of their subjects stay behind them
                key = (handler.id, event.subject)
                self._due.setdefault(key, set()).add(event.position or 0)
            return
        ready: list[Envelope] = []
        for event in job.events:
            key, position = (handler.id, event.subject), event.position or 0
            _drop(self._due, key, position)
            if self._behind(key, position):  # could not be claimed: wait for the earlier one
                self._wait_later(Job(handler, (event,)), MAX_WAIT_SECONDS)
            else:
                ready.append(event)
        if not ready:
            return
        self._batching.add(handler.id)
        keys = [((handler.id, e.subject), e.position or 0) for e in ready]
        for key, position in keys:
            self._running.setdefault(key, set()).add(position)
        left: list[Envelope] = []
        try:
            left = await apply_batch(self.context, handler, ready)
        finally:
            for key, position in keys:
                _drop(self._running, key, position)
            self._batching.discard(handler.id)
            for event in left:
                self._queue.put_nowait(Job(handler, (event,)))
            later = self._later_batches.pop(handler.id, [])
            later.sort(key=lambda event: event.position or 0)
            for merged in Job.split(handler, later):
                self._queue.put_nowait(merged)
        left_ids = {event.id for event in left}
        for subject in {e.subject for e in ready if e.id not in left_ids}:
            self._wake(handler.id, subject)

    def _behind(self, key: tuple[str, str], position: int) -> bool:
        """An earlier event of the subject is being applied or waits here: this one's
        claim could only fail until that one settles."""
        here = [*self._running.get(key, ()), *self._due.get(key, ()), *self._waiting.get(key, ())]
        return bool(here) and min(here) < position

    def _wait_later(self, job: Job, delay: float) -> None:
        """Queue a waiting job after ``delay``, or sooner if ``_wake`` finds it first."""
        event = job.events[0]
        key = (job.handler.id, event.subject)
        position = event.position or 0

        async def later() -> None:
            await asyncio.sleep(delay)
            waiting = self._waiting.get(key, {})
            waiting.pop(position, None)
            if not waiting:
                self._waiting.pop(key, None)
            self._queue.put_nowait(replace(job, overdue=True))

        task = asyncio.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        self._waiting.setdefault(key, {})[position] = (job, task)

    def _wake(self, handler_id: str, subject: str) -> None:
        """An event of ``subject`` settled for the handler: queue its earliest waiter now,
        or, for a handler with ``handle_batch``, all of them as one batch (a backlog on
        one record is claimed in one transaction, not one event per settle)."""
        key = (handler_id, subject)
        waiting = self._waiting.get(key)
        if not waiting:
            return
        handler = self.handlers.get(handler_id)
        if handler is not None and handler.spec.handle_batch is not None:
            # the earliest ones parked before any failure or wait of theirs (a batch
            # would forget those counts)
            run = list(takewhile(lambda p: waiting[p][0].fresh, sorted(waiting)))
            if len(run) > 1:
                events = []
                for position in run:
                    job, timer = waiting.pop(position)
                    timer.cancel()
                    events.append(job.events[0])
                if not waiting:
                    del self._waiting[key]
                for batch in Job.split(handler, events):
                    self._queue_due(batch)
                return
        job, timer = waiting.pop(min(waiting))
        if not waiting:
            del self._waiting[key]
        timer.cancel()
        self._queue_due(job)

    def _queue_due(self, job: Job) -> None:
        """Queue parked events again; until they start, later ones stay behind them."""
        for event in job.events:
            key = (job.handler.id, event.subject)
            self._due.setdefault(key, set()).add(event.position or 0)
        self._queue.put_nowait(job)

    def _retry_later(self, job: Job, delay: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            self._queue.put_nowait(job)

        task = asyncio.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)


def _drop(positions: dict[tuple[str, str], set[int]], key: tuple[str, str], position: int) -> None:
    """Remove ``position`` from ``positions[key]``, and the key once it has none."""
    held = positions.get(key)
    if held is not None:
        held.discard(position)
        if not held:
            del positions[key]


async def pending_jobs(
    context: AppContext, handlers: HandlerRegistry, limit: int = 10_000
) -> list[Job]:
    """Relayed events each handler has neither applied nor dead-lettered, in log order."""
    jobs: list[Job] = []
    async with context.session_factory() as session:
        for handler in handlers.handlers.values():
            start = (
                select(col(HandlerCursor.start_position))
                .where(col(HandlerCursor.handler) == handler.id)
                .scalar_subquery()
            )
            stmt = (
                select(EventRecord)
                .where(
                    col(EventRecord.type).in_(handler.spec.event_types),
                    col(EventRecord.position).is_not(None),
                    col(EventRecord.position) > start,
                    ~exists().where(
                        and_(
                            col(AppliedEvent.handler) == handler.id,
                            col(AppliedEvent.event_id) == col(EventRecord.id),
                        )
                    ),
                    ~exists().where(
                        and_(
                            col(DeadLetter.handler) == handler.id,
                            col(DeadLetter.event_id) == col(EventRecord.id),
                            col(DeadLetter.retried_at).is_(None),
                        )
                    ),
                )
                .order_by(col(EventRecord.position))
                .limit(limit)
            )
            rows = (await session.execute(stmt)).scalars()
            jobs.extend(Job.split(handler, [Envelope.from_record(r) for r in rows]))
    if jobs:
        deliveries = sum(len(job.events) for job in jobs)
        log.info("re-queued %d event deliveries left undone by an earlier process", deliveries)
    return jobs
