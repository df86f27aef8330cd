"""The session of the unit of work running now (an event handler's), for code that opens its own.

On SQLite every transaction begins ``IMMEDIATE`` (``engine.py``): a second session
opened inside an event handler's transaction waits for it until the busy timeout,
and fails. ``crm2_resolve_entity`` answers open sessions of their own, so a
handler that resolves another plugin's record (notifications' rules do) would
deadlock. While a handler runs, its session is the ambient one, and
:func:`session_for` hands it out instead of opening another (reads see the
handler's own writes; nothing is committed or closed by the borrower).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession

AMBIENT_SESSION: ContextVar[AsyncSession | None] = ContextVar("crm2_ambient_session", default=None)


@asynccontextmanager
async def session_for(factory: Callable[[], AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The ambient session when there is one, else a new one from ``factory`` (closed after)."""
    current = AMBIENT_SESSION.get()
    if current is not None:
        yield current
        return
    async with factory() as session:
        yield session
