"""Dead letters: listing them, replaying them to their handler, giving them up.

A dead letter neither replayed nor skipped holds the later events of its subject
for its handler: they are dead-lettered too (``HeldBehindDeadLetter``) rather than
applied past it. Replays go in log order and carry along the letters held behind
each replayed one (the handler applies them after it, waiting as usual); skipping
settles a letter without applying it and replays the letters held behind it.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import HELD
from crm2_core.events.models import DeadLetter, EventRecord

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)


def _waiting() -> object:
    return (col(DeadLetter.retried_at).is_(None)) & (col(DeadLetter.skipped_at).is_(None))


async def pending(context: AppContext, letter_id: uuid.UUID | None = None) -> list[DeadLetter]:
    """Dead letters neither replayed nor skipped (or just the one asked for), in log order."""
    stmt = select(DeadLetter).where(_waiting())  # type: ignore[arg-type]
    if letter_id is not None:
        stmt = stmt.where(col(DeadLetter.id) == letter_id)
    stmt = stmt.order_by(col(DeadLetter.position), col(DeadLetter.created_at))
    async with context.session_factory() as session:
        return list((await session.execute(stmt)).scalars())


async def held_behind(context: AppContext, letter: DeadLetter) -> list[DeadLetter]:
    """The waiting letters held behind ``letter``: same handler and subject, later in the log."""
    subject = (
        select(col(EventRecord.subject))
        .where(col(EventRecord.id) == letter.event_id)
        .scalar_subquery()
    )
    stmt = (
        select(DeadLetter)
        .join(EventRecord, col(EventRecord.id) == col(DeadLetter.event_id))
        .where(
            _waiting(),  # type: ignore[arg-type]
            col(DeadLetter.handler) == letter.handler,
            col(DeadLetter.error).startswith(HELD),
            col(DeadLetter.position) > letter.position,
            col(EventRecord.subject) == subject,
        )
        .order_by(col(DeadLetter.position))
    )
    async with context.session_factory() as session:
        return list((await session.execute(stmt)).scalars())


async def replay(context: AppContext, letter_id: uuid.UUID | None = None) -> int:
    """Hand dead letters back to their handlers, in log order, with the letters held
    behind each; return how many were replayed.

    With ``memory://`` the handlers run here and this waits for them; with a
    real broker the workers take them. A replay that fails again becomes a new
    dead letter.
    """
    return await _replay(context, await pending(context, letter_id))


async def skip(context: AppContext, letter_id: uuid.UUID) -> int | None:
    """Give a dead letter up (settled, never applied) and replay the letters held behind
    it; how many were replayed, or ``None`` when no such letter is waiting."""
    found = await pending(context, letter_id)
    if not found or not await _settle(context, found[0], "skipped"):
        return None
    letter = found[0]
    log.warning("dead letter %s (event %s, %s) skipped", letter.id, letter.event_id, letter.handler)
    return await _replay(context, await held_behind(context, letter))


async def _settle(
    context: AppContext, letter: DeadLetter, how: Literal["retried", "skipped"]
) -> bool:
    """Mark the letter replayed or skipped, unless someone else settled it first."""
    async with context.session_factory() as session:
        stored = await session.get(DeadLetter, letter.id, with_for_update=True)
        if stored is None or stored.retried_at is not None or stored.skipped_at is not None:
            return False
        if how == "retried":
            stored.retried_at = utcnow()
        else:
            stored.skipped_at = utcnow()
        await session.commit()
    return True


async def _replay(context: AppContext, letters: Sequence[DeadLetter]) -> int:
    bus = context.events
    await bus.broker.start()
    replayed = 0
    todo = deque(letters)
    seen = {letter.id for letter in letters}
    try:
        while todo:
            letter = todo.popleft()
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
            if not await _settle(context, letter, "retried"):
                continue
            await bus.broker.deliver_to(handler, Envelope.from_record(row))
            replayed += 1
            # held behind it: replayed after it (found after the mark, so a letter held
            # while this one was being marked is not missed)
            for held in await held_behind(context, letter):
                if held.id not in seen:
                    seen.add(held.id)
                    todo.append(held)
        drain = getattr(bus.broker, "drain", None)
        if drain is not None:
            await drain(60)
    finally:
        await bus.broker.close()
    return replayed
