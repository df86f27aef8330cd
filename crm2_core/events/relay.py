"""The relay: committed outbox rows → positions in the log → the broker and the live streams.

Positions are given under a lock held until commit (a PostgreSQL advisory
transaction lock; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), so
they become visible strictly in increasing order: a stream that has seen
position N can never later find an N-1 it missed. Several relays may run: the
one that does not get the lock returns at once and tries again on its next tick.

The batch is handed to ``sink`` *before* the rows are marked relayed: if the
process dies in between, the batch is sent again (duplicates are absorbed by
the handlers' applied-event records), never lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.events.envelope import Envelope
from crm2_core.events.models import EventRecord, HandlerCursor

RELAY_LOCK_KEY = 0x63726D32  # "crm2"
Sink = Callable[[Sequence[Envelope]], Awaitable[None]]


async def _take_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY}
    )
    return bool(taken.scalar())


async def hold_lock(session: AsyncSession) -> None:
    """Wait for the relay lock (until this transaction ends): no relay runs meanwhile."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY})


async def relay_batch(
    session_factory: async_sessionmaker[AsyncSession],
    sink: Sink,
    batch_size: int = 200,
    after_commit: Sink | None = None,
    tracked: Sequence[str] = (),
) -> int:
    """Forward one batch of unrelayed events in write order; return how many were forwarded.

    ``sink`` (the broker) runs inside the claiming transaction; ``after_commit``
    (the live streams) once the positions are committed and readable from the
    log, so a stream never announces a position a resuming client cannot replay.
    ``tracked``: the handlers ``sink`` delivers to (RabbitMQ, Redis): their
    ``delivered_through`` moves to the batch's end when it was at the batch's
    start, in the same transaction; a gap left by a process without them stays
    for ``dramatiq_broker.catch_up``.
    """
    async with session_factory() as session:
        if not await _take_lock(session):
            return 0
        stmt = (
            select(EventRecord)
            .where(col(EventRecord.relayed_at).is_(None))
            .order_by(col(EventRecord.sequence))
            .limit(batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Wait for, never skip, a row someone holds: the advisory lock already keeps
            # other relays out, and skipping a row would give it a later position than
            # rows written after it. (A handler checking a position key-share locks the
            # row for a moment; see handlers._committed_position.)
            stmt = stmt.with_for_update()
        rows = list((await session.execute(stmt)).scalars())
        if not rows:
            return 0
        top = (await session.execute(select(func.max(col(EventRecord.position))))).scalar() or 0
        now = utcnow()
        for offset, row in enumerate(rows, start=1):
            row.position = top + offset
        envelopes = [Envelope.from_record(row) for row in rows]
        await sink(envelopes)
        for row in rows:
            row.relayed_at = now
        if tracked:
            await session.execute(
                update(HandlerCursor)
                .where(
                    col(HandlerCursor.handler).in_(list(tracked)),
                    col(HandlerCursor.delivered_through) == top,
                )
                .values(delivered_through=top + len(rows))
            )
        await session.commit()
    if after_commit is not None:
        await after_commit(envelopes)
    return len(rows)


async def read_log(
    session: AsyncSession, after_position: int, limit: int = 500, types: Sequence[str] | None = None
) -> list[Envelope]:
    """Relayed events after ``after_position`` in order: what a resuming stream replays."""
    stmt = (
        select(EventRecord)
        .where(col(EventRecord.position) > after_position)
        .order_by(col(EventRecord.position))
        .limit(limit)
    )
    if types:
        stmt = stmt.where(col(EventRecord.type).in_(list(types)))
    return [Envelope.from_record(r) for r in (await session.execute(stmt)).scalars()]
