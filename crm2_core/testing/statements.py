"""The SQL statements a block of test code runs, for tests that count round trips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine


@contextlib.contextmanager
def recorded_statements(
    engine: AsyncEngine | Engine, *, this_task_only: bool = True
) -> Iterator[list[str]]:
    """Every statement ``engine`` runs inside the block, whitespace collapsed.

    ``this_task_only`` (the default): only those the calling asyncio task runs. The
    test app's relay, its in-process handlers and scheduled jobs share the engine and
    run beside the request whenever they like; a count that included them would fail
    now and then. SQLAlchemy's async statements (and an ASGI test client's request)
    run inside the awaiting task, so the filter keeps exactly the code under test.
    Work the code hands to other tasks (a handler's time limit, a background job) is
    left out too: count that with ``this_task_only=False`` and filter it yourself.
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    seen: list[str] = []
    task = asyncio.current_task() if this_task_only else None

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if this_task_only and asyncio.current_task() is not task:
            return
        seen.append(" ".join(statement.split()))

    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
