"""Subject lanes (no database): a worker's later event of a subject enters after the
earlier one it runs has settled, other subjects and handlers never wait, and a wait is
bounded (the database decides after it)."""

from __future__ import annotations

import asyncio

from crm2_core.events.lanes import SubjectLanes


async def _run(
    lanes: SubjectLanes,
    log: list[str],
    position: int,
    release: asyncio.Event,
    subject: str = "s",
    handler: str = "h",
    within: float = 5.0,
) -> None:
    async with lanes.turn(handler, subject, position, within):
        log.append(f"in {subject}{position}")
        await release.wait()
        log.append(f"out {subject}{position}")


async def test_later_events_enter_in_position_order_once_the_earlier_settled() -> None:
    lanes, log, release, free = SubjectLanes(), [], asyncio.Event(), asyncio.Event()
    free.set()  # nothing holds the later ones but the lane
    first = asyncio.create_task(_run(lanes, log, 1, release))
    later = [asyncio.create_task(_run(lanes, log, p, free)) for p in (2, 3)]
    await asyncio.sleep(0.05)
    assert log == ["in s1"] and lanes.running("h", "s") == [1, 2, 3]
    release.set()
    await asyncio.gather(first, *later)
    assert log == ["in s1", "out s1", "in s2", "out s2", "in s3", "out s3"]
    assert lanes.running("h", "s") == []


async def test_other_subjects_and_handlers_and_earlier_positions_do_not_wait() -> None:
    lanes, log, held = SubjectLanes(), [], asyncio.Event()
    first = asyncio.create_task(_run(lanes, log, 5, held))
    await asyncio.sleep(0)
    free = asyncio.Event()
    free.set()
    await _run(lanes, log, 6, free, subject="t")
    await _run(lanes, log, 6, free, handler="other")
    await _run(lanes, log, 4, free)  # came late: the database decides (it claims first)
    assert log == ["in s5", "in t6", "out t6", "in s6", "out s6", "in s4", "out s4"]
    held.set()
    await first


async def test_a_wait_is_bounded() -> None:
    lanes, log, held = SubjectLanes(), [], asyncio.Event()
    stuck = asyncio.create_task(_run(lanes, log, 1, held))
    await asyncio.sleep(0)
    free = asyncio.Event()
    free.set()
    await asyncio.wait_for(_run(lanes, log, 2, free, within=0.05), 2)
    assert log == ["in s1", "in s2", "out s2"]
    held.set()
    await stuck
    assert lanes.running("h", "s") == []


async def test_a_run_that_raises_still_lets_the_next_one_in() -> None:
    lanes = SubjectLanes()

    async def failing() -> None:
        async with lanes.turn("h", "s", 1, 5):
            await asyncio.sleep(0.01)
            raise RuntimeError("handler failed")

    log: list[str] = []
    free = asyncio.Event()
    free.set()
    failed = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await _run(lanes, log, 2, free)
    assert log == ["in s2", "out s2"]
    assert isinstance(failed.exception(), RuntimeError)


async def test_past_the_waiters_an_event_goes_to_the_database_at_once() -> None:
    """A waiting run holds a worker thread: past ``waiters`` of them, a later event
    enters at once (its claim waits the usual way), so a hot record keeps threads free."""
    lanes, log, held = SubjectLanes(waiters=1), [], asyncio.Event()
    free = asyncio.Event()
    free.set()
    first = asyncio.create_task(_run(lanes, log, 1, held))
    second = asyncio.create_task(_run(lanes, log, 2, free))  # waits: the one waiter
    await asyncio.sleep(0)
    await asyncio.wait_for(_run(lanes, log, 3, free), 2)  # no room to wait
    assert log == ["in s1", "in s3", "out s3"]
    held.set()
    await asyncio.gather(first, second)
    assert log[3:] == ["out s1", "in s2", "out s2"]
