"""Dead letters: listing them, and replaying them to their handler."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.events.envelope import Envelope
from crm2_core.events.models import DeadLetter, EventRecord

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)


async def pending(context: AppContext, letter_id: uuid.UUID | None = None) -> list[DeadLetter]:
    """Dead letters not yet replayed (or just the one asked for), oldest first."""
    stmt = select(DeadLetter).where(col(DeadLetter.retried_at).is_(None))
    if letter_id is not None:
        stmt = stmt.where(col(DeadLetter.id) == letter_id)
    async with context.session_factory() as session:
        return list((await session.execute(stmt.order_by(col(DeadLetter.created_at)))).scalars())


async def replay(context: AppContext, letter_id: uuid.UUID | None = None) -> int:
    """Hand dead letters back to their handlers; return how many were replayed.

    With ``memory://`` the handlers run here and this waits for them; with a
    real broker the workers take them. A replay that fails again becomes a new
    dead letter.
    """
    bus = context.events
    letters = await pending(context, letter_id)
    await bus.broker.start()
    replayed = 0
    try:
        for letter in letters:
            async with context.session_factory() as session:
                row = (
                    await session.execute(
                        select(EventRecord).where(col(EventRecord.id) == letter.event_id)
                    )
                ).scalar()
                handler = bus.handlers.get(letter.handler)
                if row is None or handler is None:
                    log.warning("dead letter %s: its event or handler is gone", letter.id)
                    continue
                stored = await session.get(DeadLetter, letter.id)
                assert stored is not None
                stored.retried_at = utcnow()
                await session.commit()
            await bus.broker.deliver_to(handler, Envelope.from_record(row))
            replayed += 1
        drain = getattr(bus.broker, "drain", None)
        if drain is not None:
            await drain(60)
    finally:
        await bus.broker.close()
    return replayed
