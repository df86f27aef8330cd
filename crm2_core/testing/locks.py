"""Race tests on PostgreSQL: wait until a request under test blocks on a row lock.

A race test holds a lock in one connection (an uncommitted ``UPDATE``, a
``SELECT … FOR UPDATE``), starts the request under test as a task, and must know the
request reached that lock before it lets the holder commit; otherwise the test proves
nothing about the order. ``pg_stat_activity`` tells: a session of the test's database
whose ``wait_event_type`` is ``Lock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
_LOOK_EVERY = 0.05  # seconds between two looks at pg_stat_activity


async def waits_for_lock(
    engine: AsyncEngine,
    tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]],
    *,
    waiters: int = 1,
    bound: float = 30.0,
) -> bool:
    """Whether ``waiters`` sessions of ``engine``'s database came to wait on a lock
    while the task (or every one of ``tasks``) was still running; ``False`` as soon as
    one finished, or after ``bound`` seconds. PostgreSQL only."""
    running = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    async with engine.connect() as probe:
        for _ in range(int(bound / _LOOK_EVERY)):
            if any(task.done() for task in running):
                return False
            if ((await probe.execute(_WAITING)).scalar() or 0) >= waiters:
                return True
            await probe.rollback()  # a new snapshot of the activity for the next look
            await asyncio.sleep(_LOOK_EVERY)
    return False
