"""Applying a run of events to one handler in one transaction (``EventHandler.handle_batch``).

The in-process broker gets events a relay batch at a time, after their positions
committed. For a handler that offers ``handle_batch`` it claims the whole run with one
``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` (the per-event claim of
``handlers._claim``, for many events at once) and hands the claimed ones to the
handler, in log order, in that same transaction: a batch of a CSV import's
``deals.client.created`` costs a few statements, not a few per event.

The guarantees are those of one event at a time:

- exactly once: the claim records every ``(handler, event)`` pair in the
  transaction that applies it; a pair recorded already is not claimed again;
- per-subject order: an event is claimed only when no earlier event of its subject
  (of a type the handler takes) is pending outside the batch, as seen when the
  statement starts; the batch's own events of a subject are claimed together and
  handed over in log order, so a burst on one record is one batch, not one
  transaction per event waiting for the one before;
- what is left out (applied already, waiting for a predecessor, held behind a
  predecessor's dead letter, not yet at its committed position) and everything of a
  batch whose handler raised goes back to the one-event path
  (``handlers.apply_or_dead_letter``), with its waits (never failures), retries
  and dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from crm2_core.context import TRACING
from crm2_core.db import utcnow
from crm2_core.db.direct import execute_in_session
from crm2_core.db.lists import in_param, in_values
from crm2_core.db.plans import plan_for_growing_tables
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import _CLAIMED, RegisteredHandler, _skipped
from crm2_core.events.models import AppliedEvent, EventRecord, HandlerCursor
from crm2_core.observability.logs import handler_context
from crm2_core.observability.metrics import record_handler

if TYPE_CHECKING:
    from crm2_core.context import AppContext

log = logging.getLogger(__name__)
# Events handed to a handler at once: a relay batch is at most CRM2_RELAY_BATCH_SIZE.
MAX_BATCH = 500


class BatchPositionMoved(Exception):
    """An event's committed position is not the one it was delivered with."""


def batches_for(handler: RegisteredHandler, events: Sequence[Envelope]) -> list[list[Envelope]]:
    """``events`` (in log order) as the runs the broker hands over: one event each for a
    handler without ``handle_batch``."""
    if handler.spec.handle_batch is None or len(events) < 2:
        return [[event] for event in events]
    return [list(events[i : i + MAX_BATCH]) for i in range(0, len(events), MAX_BATCH)]


@lru_cache(maxsize=256)
def _claim_batch(event_types: tuple[str, ...], dialect: str) -> Any:
    """``INSERT`` a ``(handler, event)`` record for each listed event that has its position
    and no earlier event of its subject pending for this handler; ``RETURNING`` the
    claimed ones with their positions. The rows come from the log itself, so only
    committed positions are claimed."""
    table = AppliedEvent.__table__  # type: ignore[attr-defined]
    log_table = EventRecord.__table__  # type: ignore[attr-defined]
    claimed = log_table.alias("crm2_claimed")
    handler = bindparam("claim_handler", type_=table.c.handler.type)
    applied_at = bindparam("claim_applied_at", type_=table.c.applied_at.type)
    joined_at = (
        select(col(HandlerCursor.start_position))
        .where(col(HandlerCursor.handler) == handler)
        .scalar_subquery()
    )
    # the first pending event outside the batch of each of the batch's subjects, grouped
    # once; an event is claimed when it comes before that one (or its subject has none).
    # As a correlated NOT EXISTS per claimed event the planner nested a loop over the
    # batch inside the batch: 40,000 comparisons for 200 events, most of the claim's time.
    # The subjects are listed so the planner looks them up in the subject index once
    # for the batch instead of scanning the log (what it chose for a table it had no
    # statistics of).
    pending = (
        select(
            col(EventRecord.subject).label("subject"),
            func.min(col(EventRecord.position)).label("first"),
        )
        .where(
            in_param(col(EventRecord.subject), "claim_subjects", dialect),
            in_values(col(EventRecord.type), event_types, dialect),
            ~in_param(col(EventRecord.id), "claim_ids", dialect),
            col(EventRecord.position) > func.coalesce(joined_at, 0),
            ~exists().where(
                and_(
                    col(AppliedEvent.handler) == handler,
                    col(AppliedEvent.event_id) == col(EventRecord.id),
                )
            ),
            # dead-lettered earlier: left to the one-event path, which holds it behind
            ~_skipped(handler, col(EventRecord.id)),
        )
        .group_by(col(EventRecord.subject))
        .subquery("crm2_pending")
    )
    rows = (
        select(handler, claimed.c.id, claimed.c.subject, claimed.c.position, applied_at)
        .select_from(claimed.outerjoin(pending, pending.c.subject == claimed.c.subject))
        .where(
            in_param(claimed.c.id, "claim_ids", dialect),
            claimed.c.position.is_not(None),
            or_(pending.c.first.is_(None), pending.c.first > claimed.c.position),
        )
    )
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(table)
        .from_select(list(_CLAIMED), rows)
        .on_conflict_do_nothing()
        .returning(table.c.event_id, table.c.position)
    )


async def apply_batch(
    context: AppContext, handler: RegisteredHandler, events: Sequence[Envelope]
) -> list[Envelope]:
    """Claim and apply ``events`` (log order) in one transaction with ``handle_batch``.

    Returns the events left for the one-event path: those not claimed, or all of
    them when the batch failed (nothing of it was written then).
    """
    handle_batch = handler.spec.handle_batch
    assert handle_batch is not None, f"{handler.id} has no handle_batch"
    tracing = context.find(TRACING)
    span = (
        tracing.handler_batch_span(handler.id, events)
        if tracing is not None
        else contextlib.nullcontext()
    )
    started = time.perf_counter()
    with handler_context(handler.plugin, handler.id, str(events[0].id)), span:
        try:
            claimed = await _claim_and_apply(context, handler, events)
        except Exception as exc:
            log.warning(
                "handler %s failed on a batch of %d events (%s); applying them one at a time",
                handler.id,
                len(events),
                exc,
                exc_info=not isinstance(exc, BatchPositionMoved),
            )
            return list(events)
    if claimed:
        seconds = (time.perf_counter() - started) / len(claimed)
        for _ in claimed:
            record_handler(context, handler.id, "applied", seconds)
    return [event for event in events if event.id not in claimed]


async def _claim_and_apply(
    context: AppContext, handler: RegisteredHandler, events: Sequence[Envelope]
) -> set[Any]:
    handle_batch = handler.spec.handle_batch
    assert handle_batch is not None
    async with context.session_factory() as session:
        # the log and the applied records grow during an import: a plan made when they
        # were empty would scan them whole for every batch
        await plan_for_growing_tables(session)
        claim = _claim_batch(tuple(handler.spec.event_types), session.get_bind().dialect.name)
        values = {
            "claim_handler": handler.id,
            "claim_ids": [event.id for event in events],
            "claim_subjects": sorted({event.subject for event in events}),
            "claim_applied_at": utcnow(),
        }
        rows = await execute_in_session(session, claim, values)  # asyncpg's, on PostgreSQL
        positions = dict(rows)  # event id → position
        if not positions:
            return set()
        claimed = [event for event in events if event.id in positions]
        if any(positions[event.id] != event.position for event in claimed):
            raise BatchPositionMoved(f"{handler.id}: a position changed since delivery")
        await asyncio.wait_for(
            handle_batch(session, claimed, context), handler.spec.time_limit_seconds
        )
        await session.commit()
    return set(positions)
