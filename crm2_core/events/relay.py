"""The relay: committed outbox rows → positions in the log → the broker and the live streams.

Positions are given under a lock held until commit (a PostgreSQL advisory
transaction lock; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), so
they become visible strictly in increasing order: a stream that has seen
position N can never later find an N-1 it missed. Several relays may run: the
one that does not get the lock returns at once and looks again moments later (the bus
retries after 5 ms, doubling while the lock stays taken, up to its poll interval).

The batch is handed to ``sink`` *before* the transaction that marks the rows
relayed commits: if the process dies in between, the batch is sent again
(duplicates are absorbed by the handlers' applied-event records), never lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm2_core.db import utcnow
from crm2_core.db.turns import take_turns
from crm2_core.events.envelope import Envelope
from crm2_core.events.models import EventRecord, HandlerCursor

RELAY_LOCK_KEY = 0x63726D32  # "crm2"
Sink = Callable[[Sequence[Envelope]], Awaitable[None]]
# a sink that also writes in the relay's transaction (relay_skips)
SessionSink = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


async def _take_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY}
    )
    return bool(taken.scalar())


async def hold_lock(session: AsyncSession) -> None:
    """Wait for the relay lock (until this transaction ends): no relay runs meanwhile."""
    await take_turns(session, RELAY_LOCK_KEY)


async def relay_batch(
    session_factory: async_sessionmaker[AsyncSession],
    sink: Sink,
    batch_size: int = 200,
    after_commit: Sink | None = None,
    tracked: Sequence[str] = (),
    on_busy: Callable[[], None] | None = None,
    settle: SessionSink | None = None,
) -> int:
    """Forward one batch of unrelayed events in write order; return how many were forwarded.

    ``sink`` (the broker) runs inside the claiming transaction; ``after_commit``
    (the live streams) once the positions are committed and readable from the
    log, so a stream never announces a position a resuming client cannot replay.
    ``tracked``: the handlers ``sink`` delivers to (RabbitMQ, Redis): their
    ``delivered_through`` moves to the batch's end when it was at the batch's
    start, in the same transaction; a gap left by a process without them stays
    for ``dramatiq_broker.catch_up``. ``on_busy``: called when another relay held
    the lock (it may have looked before the latest commit: the caller looks again).
    ``settle``: called instead of ``sink`` with the relay's session, in which it may
    record deliveries as done (they commit with the positions) and hands the rest on.
    """
    async with session_factory() as session:
        if not await _take_lock(session):
            if on_busy is not None:
                on_busy()
            return 0
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:  # the statement moves the handlers' marks too
            envelopes = await _position_batch(session, batch_size, tuple(tracked))
        else:
            envelopes = await _position_batch_orm(session, batch_size)
        if not envelopes:
            return 0
        if settle is None:
            await sink(envelopes)
        else:
            await settle(session, envelopes)
        if tracked and not postgres:
            top = envelopes[0].position - 1  # type: ignore[operator]
            await session.execute(
                update(HandlerCursor)
                .where(
                    col(HandlerCursor.handler).in_(list(tracked)),
                    col(HandlerCursor.delivered_through) == top,
                )
                .values(delivered_through=top + len(envelopes))
            )
        await session.commit()
    if after_commit is not None:
        await after_commit(envelopes)
    return len(envelopes)


async def _position_batch(
    session: AsyncSession, batch_size: int, tracked: tuple[str, ...] = ()
) -> list[Envelope]:
    """PostgreSQL: claim, number and mark the batch in one ``UPDATE … RETURNING``
    (a statement after the lock's, so its snapshot sees the previous relay's commit);
    with ``tracked``, the same statement moves those handlers' ``delivered_through``,
    so that nothing but the commit is left once the broker has the batch."""
    stmt = _numbering(batch_size, tracked)
    rows = (await session.execute(stmt, {"crm2_relayed_at": utcnow()})).all()
    return sorted((Envelope.from_record(r) for r in rows), key=_position)


@lru_cache(maxsize=16)
def _numbering(batch_size: int, tracked: tuple[str, ...] = ()) -> Any:
    """The batch's statement, built once per size.

    The rows are taken ``FOR UPDATE`` in write order: waited for, never skipped (the
    advisory lock already keeps other relays out, and skipping a row would give it a
    later position than rows written after it; a handler checking a position
    key-share locks the row for a moment, see handlers._committed_position).
    """
    event = EventRecord.__table__  # type: ignore[attr-defined]
    batch = (
        select(event.c.sequence)
        .where(event.c.relayed_at.is_(None))
        .order_by(event.c.sequence)
        .limit(batch_size)
        .with_for_update()
        .cte("crm2_batch")
    )
    numbered = select(
        batch.c.sequence, func.row_number().over(order_by=batch.c.sequence).label("n")
    ).subquery("crm2_numbered")
    top = select(func.coalesce(func.max(event.c.position), 0)).scalar_subquery()
    relayed_at = bindparam("crm2_relayed_at", type_=event.c.relayed_at.type)
    moved = (
        update(event)
        .where(event.c.sequence == numbered.c.sequence)
        .values(position=top + numbered.c.n, relayed_at=relayed_at)
        .returning(*event.c)
    )
    if not tracked:
        return moved
    # a data-modifying CTE: the marks read the batch's positions from its RETURNING
    batch_rows = moved.cte("crm2_moved")
    cursor = HandlerCursor.__table__  # type: ignore[attr-defined]
    marks = (
        update(cursor)
        .where(
            cursor.c.handler.in_(tracked),
            cursor.c.delivered_through
            == select(func.min(batch_rows.c.position) - 1).scalar_subquery(),
        )
        .values(delivered_through=select(func.max(batch_rows.c.position)).scalar_subquery())
        .cte("crm2_marks")
    )
    return select(batch_rows).add_cte(marks)


def _position(envelope: Envelope) -> int:
    return envelope.position or 0


async def _position_batch_orm(session: AsyncSession, batch_size: int) -> list[Envelope]:
    """SQLite (``BEGIN IMMEDIATE`` already serialises writers): read, number, mark."""
    stmt = (
        select(EventRecord)
        .where(col(EventRecord.relayed_at).is_(None))
        .order_by(col(EventRecord.sequence))
        .limit(batch_size)
    )
    rows = list((await session.execute(stmt)).scalars())
    if not rows:
        return []
    top = (await session.execute(select(func.max(col(EventRecord.position))))).scalar() or 0
    now = utcnow()
    for offset, row in enumerate(rows, start=1):
        row.position = top + offset
        row.relayed_at = now
    await session.flush()
    return [Envelope.from_record(row) for row in rows]


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
