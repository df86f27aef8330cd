"""Applying one event to one handler: at-least-once delivery, exactly-once effect.

The handler runs in a transaction of its own in which the core records
``(handler, event)``; a redelivered event finds the record and changes nothing.
Per subject, a handler applies events in log order: if an earlier event of the
same record (of a type it handles) is neither applied nor dead-lettered, this
one waits (``EarlierPending``, a ``waits.Waiting``: retried with backoff, never
counted as a failure nor dead-lettered for it). If that earlier event is
dead-lettered for the handler (neither replayed nor skipped), this one is not
applied past it: it is dead-lettered too, held behind it (``HeldBehindDeadLetter``),
so that a replay applies the subject's events in log order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback as tb
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, bindparam, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.context import TRACING
from crm2_core.db import utcnow
from crm2_core.db.direct import execute_in_session
from crm2_core.db.lists import in_values
from crm2_core.events.envelope import Envelope
from crm2_core.events.models import AppliedEvent, DeadLetter, EventRecord, HandlerCursor
from crm2_core.events.waits import Waiting
from crm2_core.observability.logs import handler_context
from crm2_core.observability.metrics import record_handler
from crm2_hookspecs import EventHandler

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)
# "held": dead-lettered behind an earlier event's dead letter, without running
Outcome = Literal["applied", "skipped", "duplicate", "held"]
HELD = "HeldBehindDeadLetter"


class OutOfOrder(Waiting):
    """The event cannot be applied in log order yet (its position is not committed)."""


class EarlierPending(OutOfOrder):
    """An earlier event of the same subject has not been applied by this handler yet."""


def _unsettled(handler: Any, event_id: Any) -> Any:
    """A dead letter of ``(handler, event)`` neither replayed nor skipped: it holds the
    later events of the subject."""
    return and_(
        col(DeadLetter.handler) == handler,
        col(DeadLetter.event_id) == event_id,
        col(DeadLetter.retried_at).is_(None),
        col(DeadLetter.skipped_at).is_(None),
    )


def _skipped(handler: Any, event_id: Any) -> Any:
    """The operator gave ``(handler, event)`` up: settled, nothing holds behind it."""
    return exists().where(
        and_(
            col(DeadLetter.handler) == handler,
            col(DeadLetter.event_id) == event_id,
            col(DeadLetter.skipped_at).is_not(None),
        )
    )


@dataclass(frozen=True)
class RegisteredHandler:
    id: str  # <plugin>.<name>
    plugin: str
    spec: EventHandler

    def wants(self, event_type: str) -> bool:
        return event_type in self.spec.event_types


# which (handler, event) pairs of a batch a broker sends (``deliver(events, to)``)
Pairs = Callable[[RegisteredHandler, Envelope], bool]


class HandlerRegistry:
    def __init__(self, handlers: Iterable[RegisteredHandler]) -> None:
        self.handlers = {h.id: h for h in handlers}

    def for_event(self, event_type: str) -> list[RegisteredHandler]:
        return [h for h in self.handlers.values() if h.wants(event_type)]

    def get(self, handler_id: str) -> RegisteredHandler | None:
        return self.handlers.get(handler_id)

    @property
    def plugins(self) -> list[str]:
        return sorted({h.plugin for h in self.handlers.values()})


# The broker gets a batch before the relay commits its positions (so nothing is
# lost); a handler that is faster than that commit waits for it this long.
POSITION_WAIT_SECONDS = 5.0
# How often to look again where the relay's commit cannot be waited for (SQLite, or
# a relay that rolled back and will send the event again with another position).
POSITION_POLL_SECONDS = 0.02


async def _committed_position(session: AsyncSession, event: Envelope, wait_s: float) -> Any:
    """The event's committed position; on PostgreSQL, first wait (at most ``wait_s``)
    for the relay that holds the row ``FOR UPDATE`` to commit.

    A ``FOR KEY SHARE`` lock conflicts only with that ``FOR UPDATE``: the query returns
    the moment the relay commits, with the committed row, instead of polling for it.
    """
    stmt = select(col(EventRecord.position)).where(col(EventRecord.id) == event.id)
    if session.get_bind().dialect.name != "postgresql":
        return (await session.execute(stmt)).scalar()
    wait_ms = str(max(1, int(wait_s * 1000)))
    configured = (await session.execute(_SET_LOCK_TIMEOUT, {"wait_ms": wait_ms})).scalar()
    # The handler's own statements wait for locks as configured: the outer select list
    # puts the setting back once the row is out of the lock wait, in the same round trip.
    locked = stmt.with_for_update(read=True, key_share=True).subquery()
    waiting: Any = select(locked.c.position, func.set_config("lock_timeout", configured, True))
    try:
        return (await session.execute(waiting)).scalar()
    except DBAPIError:  # lock_timeout: the relay still holds the row
        return None


# the setting as configured (read before the select list's next item changes it)
_SET_LOCK_TIMEOUT = text(
    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', :wait_ms, true)"
)


async def _position_if_free(session: AsyncSession, event: Envelope) -> Any:
    """The event's committed position in one statement, or ``None`` while the relay
    still holds the row (PostgreSQL: ``SKIP LOCKED`` answers at once instead of waiting).

    After a claim that wrote nothing, a committed position (a duplicate, or an event
    held behind an earlier one) needs no lock timeout set (and reset) around the read.
    """
    stmt = (
        select(col(EventRecord.position))
        .where(col(EventRecord.id) == event.id)
        .with_for_update(read=True, key_share=True, skip_locked=True)
    )
    return (await session.execute(stmt)).scalar()


async def _wait_for_committed_position(session: AsyncSession, event: Envelope) -> bool:
    """Until the relay's commit is visible, earlier events' positions are not: the claim's
    order check would see a hole where an older event of the same subject sits.

    Waits in the handler's own transaction (one transaction per delivery, not two):
    once the position is seen, the next statements see the relay's commit too
    (PostgreSQL's read committed takes a snapshot per statement). A miss rolls back
    before looking again: a lock timeout aborted the transaction, and SQLite keeps
    one snapshot for a whole read transaction.

    ``False``: the event was committed at another position. This delivery is stale (its
    relay rolled back after sending it; the relay that committed sent it again).
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and await _position_if_free(session, event) == event.position:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POSITION_WAIT_SECONDS
    while True:
        committed = await _committed_position(session, event, deadline - loop.time())
        if committed == event.position:
            return True
        if committed is not None:
            return False
        await session.rollback()
        if loop.time() > deadline:
            raise OutOfOrder(f"event {event.id}: its position is not committed yet")
        await asyncio.sleep(POSITION_POLL_SECONDS)


_CLAIMED = ("handler", "event_id", "subject", "position", "applied_at")


@lru_cache(maxsize=256)
def _claim(event_types: tuple[str, ...], dialect: str) -> Any:
    """``INSERT`` the ``(handler, event)`` record unless it exists, the event's position
    is not committed (as far as the statement sees) or an earlier event of the subject
    is pending for this handler; ``RETURNING`` tells whether it was written.

    One statement for what were four (position committed? applied yet? anything earlier
    pending? claim): a concurrent delivery of the same pair waits on the other's
    uncommitted row, then finds the conflict and writes nothing. Built once per
    handler's event types, with the pair's values as parameters (``_CLAIMED``).
    """
    table = AppliedEvent.__table__  # type: ignore[attr-defined]
    # parameter names that are no column's: an INSERT would take those as its values
    param = {name: bindparam(f"claim_{name}", type_=table.c[name].type) for name in _CLAIMED}
    joined_at = (
        select(col(HandlerCursor.start_position))
        .where(col(HandlerCursor.handler) == param["handler"])
        .scalar_subquery()
    )
    earlier = select(col(EventRecord.id)).where(
        col(EventRecord.subject) == param["subject"],
        # ``= ANY(array)`` on PostgreSQL: an ``IN`` list is rendered again at every
        # execution, and a handler taking every event type (notifications' rules,
        # tasks' automations) lists about a hundred of them.
        in_values(col(EventRecord.type), event_types, dialect),
        col(EventRecord.position) < param["position"],
        # only what the handler was ever meant to see: after it joined the log
        col(EventRecord.position) > func.coalesce(joined_at, 0),
        ~exists().where(
            and_(
                col(AppliedEvent.handler) == param["handler"],
                col(AppliedEvent.event_id) == col(EventRecord.id),
            )
        ),
        # a dead-lettered one holds this one too (see _held_behind); a skipped one not
        ~_skipped(param["handler"], col(EventRecord.id)),
    )
    # The event at this position in the statement's own snapshot: then the relay's
    # commit, and every earlier one, is in that snapshot too (see apply).
    relayed = select(col(EventRecord.id)).where(
        col(EventRecord.id) == param["event_id"],
        col(EventRecord.position) == param["position"],
    )
    row = select(*param.values()).where(relayed.exists(), ~earlier.exists())
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(table)
        .from_select(list(_CLAIMED), row)
        .on_conflict_do_nothing()
        .returning(table.c.handler)
    )


def claim_values(handler: RegisteredHandler, event: Envelope) -> dict[str, Any]:
    """The parameters of ``_claim``'s statement for ``(handler, event)``."""
    return {
        "claim_handler": handler.id,
        "claim_event_id": event.id,
        "claim_subject": event.subject,
        "claim_position": event.position,
        "claim_applied_at": utcnow(),
    }


async def claim(session: AsyncSession, handler: RegisteredHandler, event: Envelope) -> bool:
    """Record ``(handler, event)`` applied in the session's transaction, with the order
    and duplicate checks of a delivery; ``False``: nothing was written."""
    statement = _claim(tuple(handler.spec.event_types), session.get_bind().dialect.name)
    return bool(await execute_in_session(session, statement, claim_values(handler, event)))


async def asks_to_skip(
    session: AsyncSession,
    handler: RegisteredHandler,
    event: Envelope,
    context: AppContext,
    seconds: float | None = None,
) -> bool:
    """The handler's ``skips`` answer within ``seconds`` (default: the handler's time
    limit); it must have one."""
    skips = handler.spec.skips
    assert skips is not None
    async with asyncio.timeout(handler.spec.time_limit_seconds if seconds is None else seconds):
        return bool(await skips(session, event, context))


async def apply(context: AppContext, handler: RegisteredHandler, event: Envelope) -> Outcome:
    """Run ``handler`` on ``event`` once; raise to have it retried."""
    assert event.position is not None, "only relayed events are handled"
    async with context.session_factory() as session:
        dialect = session.get_bind().dialect.name
        claim = _claim(tuple(handler.spec.event_types), dialect)
        values = claim_values(handler, event)
        # An event that is nothing to the handler: the claim is the transaction's one
        # statement, sent without BEGIN (PostgreSQL commits it by itself).
        alone = handler.spec.skips is not None and await asks_to_skip(
            session, handler, event, context
        )
        # The usual case, in one statement: the relay has committed and nothing earlier
        # is pending. The claim sees the event at its position only in a snapshot that
        # holds the relay's commit, so its order check sees every earlier position.
        # Straight through asyncpg on PostgreSQL (every delivery of every handler).
        claimed = bool(await execute_in_session(session, claim, values, alone=alone))
        if claimed and alone:
            await session.commit()
            return "skipped"
        if not claimed:
            # Not committed yet (wait for it), stale, a duplicate or held: find out which.
            # PostgreSQL's next statements take snapshots of their own; SQLite's INSERT
            # took the write lock (the relay could not commit) and its snapshot stays.
            if dialect != "postgresql":
                await session.rollback()
            if not await _wait_for_committed_position(session, event):
                log.info("event %s was delivered with a stale position; ignored", event.id)
                return "duplicate"
            claimed = bool(await execute_in_session(session, claim, values))
        if not claimed:
            if await session.get(AppliedEvent, (handler.id, event.id)) is not None:
                return "duplicate"
            blocking = await _held_behind(session, handler, event)
            if blocking is None:
                raise EarlierPending(
                    f"{handler.id}: an earlier event of {event.subject} is pending"
                )
            session.add(_held_letter(handler, event, blocking))
            await session.commit()
            log.warning(
                "handler %s: event %s (%s) held behind dead-lettered event %s (dead letter %s)",
                handler.id,
                event.id,
                event.type,
                blocking.event_id,
                blocking.id,
            )
            return "held"
        await asyncio.wait_for(
            handler.spec.handle(session, event, context), handler.spec.time_limit_seconds
        )
        await session.commit()
    return "applied"


async def _held_behind(
    session: AsyncSession, handler: RegisteredHandler, event: Envelope
) -> DeadLetter | None:
    """The earliest unsettled dead letter of an earlier event of the subject, if any.

    ``FOR SHARE`` (PostgreSQL): a replay or skip of that letter committing meanwhile
    is waited for and seen, so the event waits for the replayed one instead of being
    held behind a letter that no longer holds anything.
    """
    stmt = (
        select(DeadLetter)
        .join(EventRecord, col(EventRecord.id) == col(DeadLetter.event_id))
        .where(
            _unsettled(handler.id, col(EventRecord.id)),
            col(EventRecord.subject) == event.subject,
            col(EventRecord.type).in_(handler.spec.event_types),
            col(EventRecord.position) < event.position,
            ~exists().where(
                and_(
                    col(AppliedEvent.handler) == handler.id,
                    col(AppliedEvent.event_id) == col(EventRecord.id),
                )
            ),
        )
        .order_by(col(EventRecord.position))
        .limit(1)
        .with_for_update(read=True, of=DeadLetter)
    )
    return (await session.execute(stmt)).scalar()


def _held_letter(handler: RegisteredHandler, event: Envelope, blocking: DeadLetter) -> DeadLetter:
    reason = (
        f"{HELD}: event {blocking.event_id} of {event.subject} is dead-lettered for "
        f"{handler.id} (dead letter {blocking.id}); replay it (or --skip it) first"
    )
    return DeadLetter(
        handler=handler.id,
        event_id=event.id,
        position=event.position or 0,
        attempts=0,  # never run
        error=reason[:2000],
        traceback=reason,
    )


async def apply_or_dead_letter(
    context: AppContext, handler: RegisteredHandler, event: Envelope, attempt: int
) -> Outcome | None:
    """``apply``; on failure log it, and after the last retry store a dead letter.

    Returns ``None`` when the failure was dead-lettered; re-raises while retries remain.
    ``attempt`` counts failures only: a ``Waiting`` is re-raised at once, whatever the
    attempt (the broker retries it with ``waits.wait_seconds``).
    """
    tracing = context.find(TRACING)
    span = (
        tracing.handler_span(handler.id, event, attempt)
        if tracing is not None
        else contextlib.nullcontext()
    )
    with handler_context(handler.plugin, handler.id, str(event.id)), span:
        started = time.perf_counter()
        outcome: str = "failed"
        try:
            result = await _apply_or_dead_letter(context, handler, event, attempt)
            outcome = "dead_lettered" if result in (None, "held") else str(result)
            return result
        except Waiting:
            outcome = "waiting"
            raise
        finally:
            record_handler(context, handler.id, outcome, time.perf_counter() - started)


async def _apply_or_dead_letter(
    context: Any, handler: RegisteredHandler, event: Envelope, attempt: int
) -> Outcome | None:
    try:
        return await apply(context, handler, event)
    except Waiting as exc:
        log.debug("handler %s waiting on event %s (%s): %s", handler.id, event.id, event.type, exc)
        raise
    except Exception as exc:
        log.error(
            "handler %s failed on event %s (%s) attempt %d: %s",
            handler.id,
            event.id,
            event.type,
            attempt + 1,
            exc,
            exc_info=True,
        )
        if attempt < handler.spec.max_retries:
            raise
        async with context.session_factory() as session:
            session.add(
                DeadLetter(
                    handler=handler.id,
                    event_id=event.id,
                    position=event.position or 0,
                    attempts=attempt + 1,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    traceback="".join(tb.format_exception(exc)),
                )
            )
            await session.commit()
        log.error(
            "handler %s gave up on event %s after %d attempts: dead-lettered",
            handler.id,
            event.id,
            attempt + 1,
        )
        return None


def backoff_seconds(handler: RegisteredHandler, attempt: int) -> float:
    delay = handler.spec.min_backoff_seconds * (2**attempt)
    return float(min(delay, handler.spec.max_backoff_seconds))


async def register_cursors(context: AppContext, handlers: HandlerRegistry) -> None:
    """A handler seen for the first time starts at the current end of the log.

    Several processes may start at once: whoever inserts first wins, the others'
    duplicate inserts are dropped.
    """
    async with context.session_factory() as session:
        known = set((await session.execute(select(col(HandlerCursor.handler)))).scalars())
        new = [h for h in handlers.handlers if h not in known]
        if not new:
            return
        top = (await session.execute(select(func.max(col(EventRecord.position))))).scalar() or 0
        session.add_all([HandlerCursor(handler=h, start_position=top) for h in new])
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
