from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from probe_plugin import ProbeEffect
from sqlalchemy import func, select

from crm2_core.events.models import DeadLetter, EventRecord
from crm2_core.testing import Crm2TestApp


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Poll until ``check`` holds; generous, because a loaded machine retries late."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def effects(app: Crm2TestApp, event_id: uuid.UUID | None = None) -> int:
    async with app.context.session_factory() as session:
        stmt = select(func.count()).select_from(ProbeEffect)
        if event_id is not None:
            stmt = stmt.where(ProbeEffect.event_id == event_id)
        return int((await session.execute(stmt)).scalar_one())


async def event_rows(app: Crm2TestApp) -> list[EventRecord]:
    async with app.context.session_factory() as session:
        return list(
            (await session.execute(select(EventRecord).order_by(EventRecord.sequence))).scalars()
        )


async def dead_letters(app: Crm2TestApp) -> list[DeadLetter]:
    async with app.context.session_factory() as session:
        return list((await session.execute(select(DeadLetter))).scalars())
