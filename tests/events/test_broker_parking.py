"""The in-process broker's parking, without a database: which parked events a settled
one wakes, and how (``MemoryBroker._wait_later`` / ``_wake`` / ``_behind``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crm2_core.events import SYSTEM, Envelope
from crm2_core.events.handlers import HandlerRegistry, RegisteredHandler
from crm2_core.events.memory_broker import Job, MemoryBroker
from crm2_hookspecs import EventHandler

PARKED_FOR = 60.0  # the fallback timer never fires within a test


async def _nothing(*_: Any) -> None:
    return None


def _handler(batches: bool) -> RegisteredHandler:
    spec = EventHandler(
        name="h",
        event_types=("t.x.created",),
        handle=_nothing,
        handle_batch=_nothing if batches else None,
    )
    return RegisteredHandler(id="p.h", plugin="p", spec=spec)


def _event(position: int, subject: str = "s") -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type="t.x.created",
        version=1,
        occurred_at=datetime.now(UTC),
        actor=SYSTEM,
        subject=subject,
        data={},
        position=position,
    )


def _queued(broker: MemoryBroker) -> list[tuple[list[int], int, int]]:
    """What the wake queued: each job's positions, failures and waits."""
    jobs: list[Job] = []
    while not broker._queue.empty():
        jobs.append(broker._queue.get_nowait())
    return [([e.position or 0 for e in job.events], job.attempt, job.waits) for job in jobs]


async def test_a_batch_handlers_parked_events_are_woken_as_one_batch() -> None:
    handler = _handler(batches=True)
    broker = MemoryBroker(None, HandlerRegistry([handler]))  # type: ignore[arg-type]
    try:
        for position in (3, 2, 4):
            broker._wait_later(Job(handler, (_event(position),)), PARKED_FOR)
        broker._wait_later(Job(handler, (_event(9, subject="other"),)), PARKED_FOR)
        assert broker._behind(("p.h", "s"), 5) and not broker._behind(("p.h", "s"), 1)
        broker._wake("p.h", "s")
        assert _queued(broker) == [([2, 3, 4], 0, 0)]
        # queued, not started yet: a later event of the subject still waits behind them
        assert broker._behind(("p.h", "s"), 5)
        assert ("p.h", "other") in broker._waiting
    finally:
        await broker.close()


async def test_a_parked_event_that_failed_or_waited_is_woken_alone_and_keeps_its_counts() -> None:
    handler = _handler(batches=True)
    broker = MemoryBroker(None, HandlerRegistry([handler]))  # type: ignore[arg-type]
    try:
        broker._wait_later(Job(handler, (_event(2),), attempt=1), PARKED_FOR)
        broker._wait_later(Job(handler, (_event(3),)), PARKED_FOR)
        broker._wait_later(Job(handler, (_event(4),), waits=2), PARKED_FOR)
        broker._wait_later(Job(handler, (_event(5),)), PARKED_FOR)
        broker._wake("p.h", "s")
        assert _queued(broker) == [([2], 1, 0)]
        broker._wake("p.h", "s")
        assert _queued(broker) == [([3], 0, 0)]  # the next one after it waited: alone
        broker._wake("p.h", "s")
        assert _queued(broker) == [([4], 0, 2)]
        broker._wake("p.h", "s")
        assert _queued(broker) == [([5], 0, 0)]
        assert not broker._waiting
    finally:
        await broker.close()


async def test_a_one_event_handler_wakes_the_earliest_parked_event_only() -> None:
    handler = _handler(batches=False)
    broker = MemoryBroker(None, HandlerRegistry([handler]))  # type: ignore[arg-type]
    try:
        for position in (4, 2, 3):
            broker._wait_later(Job(handler, (_event(position),)), PARKED_FOR)
        broker._wake("p.h", "s")
        assert _queued(broker) == [([2], 0, 0)]
        assert sorted(broker._waiting[("p.h", "s")]) == [3, 4]
    finally:
        await broker.close()
