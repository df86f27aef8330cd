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


@contextlib.contextmanager
def sent_to_postgresql() -> Iterator[list[str]]:
    """What asyncpg sends to the server for the calling asyncio task inside the block:
    each statement's SQL (``BEGIN`` and ``COMMIT`` included), whitespace collapsed.

    :func:`recorded_statements` listens on the engine, and a listener makes SQLAlchemy
    run every statement (crm2's driver paths step aside for it, ``db.direct``): to
    count the round trips of those paths themselves, this records below SQLAlchemy, at
    asyncpg's connection and prepared statement (what SQLAlchemy itself sends goes
    through the latter), with nothing listening on the engine.
    """
    from asyncpg.connection import Connection
    from asyncpg.prepared_stmt import PreparedStatement

    seen: list[str] = []
    task = asyncio.current_task()

    def recording(cls: type, name: str, sql_of: Any) -> tuple[type, str, Any]:
        original = getattr(cls, name)

        async def sent(self: Any, *args: Any, **kwargs: Any) -> Any:
            if asyncio.current_task() is task:
                seen.append(" ".join(sql_of(self, args).split()))
            return await original(self, *args, **kwargs)

        setattr(cls, name, sent)
        return cls, name, original

    def first_argument(_self: Any, args: tuple[Any, ...]) -> str:
        return str(args[0])

    def its_query(statement: Any, _args: tuple[Any, ...]) -> str:
        return str(statement.get_query())

    patched = [
        recording(Connection, name, first_argument)
        for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval")
    ]
    patched += [recording(PreparedStatement, name, its_query) for name in ("fetch", "executemany")]
    try:
        yield seen
    finally:
        for cls, name, original in patched:
            setattr(cls, name, original)
