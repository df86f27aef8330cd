"""Events that are nothing to a handler, recorded by the relay instead of sent to it.

A handler that takes every event type (notifications' ``rules``, tasks'
``automations``) usually has nothing to do with an event, and says so with
``skips``. Sent through RabbitMQ or Redis, each such event still cost a message per
handler, a worker's delivery of it and two round trips there (the ``skips`` read and
the claim), beside the deliveries that do something: on two cores, a third of an
event's latency. For a small batch, the relay asks ``skips`` itself (the same call, on
a session of its own, as the worker would) and writes the claim of each skipped pair
in its own transaction, with the same order and duplicate checks as a delivery's
claim; that pair is sent nowhere. The claim commits with the batch's positions or not
at all (a relay that rolls back sends the batch again, and asks again).

The other handlers' messages go to the broker first, so the skips' reads and claims
run while the broker persists them; a skipped pair whose claim wrote nothing (an
earlier event of its subject is pending for the handler) is sent as usual, after.
A larger batch (a bulk import; ``CRM2_RELAY_SKIPS_BATCH_SIZE``, 4) is sent whole:
there the workers' skips, one message at a time, keep the relay's lock short.

The in-process broker (``memory://``) gets its batch after the relay's commit; there
the relay records the skipped pairs the same way (``record_skipped``) and the broker
queues only the rest, a transaction per idle handler and batch fewer.

PostgreSQL only: on SQLite the relay holds the database's one write lock, and a
second connection's read beside it is the wrong place to learn whether to write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import (
    HandlerRegistry,
    Pairs,
    RegisteredHandler,
    asks_to_skip,
    claim,
)
from crm2_core.observability.metrics import record_handler

if TYPE_CHECKING:
    from crm2_core.context import AppContext

log = logging.getLogger(__name__)
# A skips slower than this at the relay (which holds its lock meanwhile) counts as no.
RELAY_SKIPS_SECONDS = 0.5


class Delivering(Protocol):
    def __call__(self, events: Sequence[Envelope], to: Pairs | None = None) -> Awaitable[None]: ...


def asked_at_relay(
    handlers: HandlerRegistry, events: Sequence[Envelope], dialect: str, most_events: int
) -> bool:
    """Whether the relay asks the handlers' skips for this batch itself: a batch of one
    or two is what an interactive write makes; a large one means the relay is behind,
    and asking there would hold its lock for round trips a worker can make instead
    (``CRM2_RELAY_SKIPS_BATCH_SIZE``)."""
    return (
        dialect == "postgresql"
        and 0 < len(events) <= most_events
        and any(h.spec.skips is not None for e in events for h in handlers.for_event(e.type))
    )


async def deliver_unless_skipped(
    context: AppContext,
    handlers: HandlerRegistry,
    session: AsyncSession,
    events: Sequence[Envelope],
    deliver: Delivering,
) -> None:
    """Send ``events`` to their handlers, except the pairs recorded as skipped in the
    relay's ``session`` (its transaction, after the batch's positions)."""
    dialect, most = session.get_bind().dialect.name, context.settings.relay_skips_batch_size
    if not asked_at_relay(handlers, events, dialect, most):
        await deliver(events)
        return
    sending = asyncio.ensure_future(deliver(events, _never_skips))
    try:
        recorded = await _record_skipped(context, handlers, session, events)
    except BaseException:
        await asyncio.wait({sending})  # the relay rolls back: nothing may still be sending
        if not sending.cancelled():
            sending.exception()  # retrieved; the claim's error is the one raised
        raise
    await sending

    def unrecorded(handler: RegisteredHandler, event: Envelope) -> bool:
        return handler.spec.skips is not None and (handler.id, event.id) not in recorded

    rest = [e for e in events if any(unrecorded(h, e) for h in handlers.for_event(e.type))]
    if rest:
        await deliver(rest, unrecorded)


def _never_skips(handler: RegisteredHandler, _event: Envelope) -> bool:
    return handler.spec.skips is None


async def record_skipped(
    context: AppContext,
    handlers: HandlerRegistry,
    session: AsyncSession,
    events: Sequence[Envelope],
) -> set[tuple[str, Any]]:
    """The in-process broker's side: record the pairs of a small batch that their
    handlers skip in the relay's ``session``; the caller queues the rest once the batch
    commits (a transaction per idle handler and batch fewer)."""
    dialect, most = session.get_bind().dialect.name, context.settings.relay_skips_batch_size
    if not asked_at_relay(handlers, events, dialect, most):
        return set()
    return await _record_skipped(context, handlers, session, events)


async def _record_skipped(
    context: AppContext,
    handlers: HandlerRegistry,
    session: AsyncSession,
    events: Sequence[Envelope],
) -> set[tuple[str, Any]]:
    """The pairs whose ``skips`` said yes and whose claim the relay's session wrote."""
    recorded: set[tuple[str, Any]] = set()
    for event in events:
        for handler in handlers.for_event(event.type):
            if handler.spec.skips is None:
                continue
            started = time.perf_counter()
            if await _skips(context, handler, event) and await claim(session, handler, event):
                recorded.add((handler.id, event.id))
                record_handler(context, handler.id, "skipped", time.perf_counter() - started)
    return recorded


async def _skips(context: AppContext, handler: RegisteredHandler, event: Envelope) -> bool:
    """``skips`` on a session of its own (as a worker asks it, before any transaction);
    a failure or a slow answer is a no: the worker gets the event and asks again."""
    try:
        async with context.session_factory() as reader:
            return await asks_to_skip(reader, handler, event, context, RELAY_SKIPS_SECONDS)
    except Exception as exc:
        log.warning(
            "handler %s: skips failed on event %s at the relay (%s); sent to the worker",
            handler.id,
            event.id,
            exc,
        )
        return False
