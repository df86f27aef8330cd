"""Events that are nothing to a handler, recorded by the relay instead of sent to it.

A handler that takes every event type (notifications' ``rules``, tasks'
``automations``) usually has nothing to do with an event, and says so with
``skips``. Sent through RabbitMQ or Redis, each such event still cost a message per
handler, a worker's delivery of it and two round trips there (the ``skips`` read and
the claim), beside the deliveries that do something: on two cores, a third of an
event's latency. For a small batch, the relay asks ``skips`` itself (the same call,
on a session of its own, as the worker would) and writes the claim of each skipped
pair in the relay's transaction, with the same order and duplicate checks as a
delivery's claim; that pair is sent nowhere. What the relay spends on asking is
bounded (0.5 s a batch: then the rest is sent), and a batch whose claims fail makes
it send every pair for a minute, so a fault there never stops the log. The claim
commits with the batch's positions or not at all (a relay that rolls back sends the
batch again, and asks again).

The other handlers' messages go to the broker first, so the skips' reads and claims
run while the broker persists them; a skipped pair whose claim wrote nothing (an
earlier event of its subject is pending for the handler) is sent as usual, after.
A larger batch (a bulk import; ``CRM2_RELAY_SKIPS_BATCH_SIZE``, 4) is sent whole:
there the workers' skips, one message at a time, keep the relay's lock short.

The in-process broker (``memory://``) gets its batch after the relay's commit; there
the relay records the skipped pairs the same way (``RelaySkips.record``) and the broker
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
# What the relay, holding its lock, spends on a batch's skips at most; a pair it has
# not asked by then is sent (or queued), and its delivery asks.
SKIPS_BUDGET_SECONDS = 0.5
# After a batch whose claims failed (the relay rolled back), the relay sends every
# pair for this long: a fault in the claims must not stop the log.
PAUSE_AFTER_FAILURE_SECONDS = 60.0
Pair = tuple[str, Any]  # (handler id, event id)


class Delivering(Protocol):
    def __call__(self, events: Sequence[Envelope], to: Pairs | None = None) -> Awaitable[None]: ...


class RelaySkips:
    """The relay's side of ``skips`` for one application's bus."""

    def __init__(self, context: AppContext, handlers: HandlerRegistry) -> None:
        self.context, self.handlers = context, handlers
        self._paused_until = 0.0  # monotonic
        # the last batch's recorded pairs and what asking took: counted once it commits
        self._uncounted: list[tuple[str, float]] = []

    def asked(self, session: AsyncSession, events: Sequence[Envelope]) -> bool:
        """Whether the relay asks the handlers' skips for this batch itself: a batch of
        one or two is what an interactive write makes; a large one means the relay is
        behind, and asking there would hold its lock for round trips a worker can make
        instead (``CRM2_RELAY_SKIPS_BATCH_SIZE``)."""
        return (
            session.get_bind().dialect.name == "postgresql"
            and 0 < len(events) <= self.context.settings.relay_skips_batch_size
            and time.monotonic() >= self._paused_until
            and any(
                h.spec.skips is not None for e in events for h in self.handlers.for_event(e.type)
            )
        )

    async def deliver(
        self, session: AsyncSession, events: Sequence[Envelope], deliver: Delivering
    ) -> None:
        """An external broker's share of the batch: send ``events`` to their handlers,
        except the pairs recorded as skipped in the relay's ``session``."""
        self._uncounted = []
        if not self.asked(session, events):
            await deliver(events)
            return
        sending = asyncio.ensure_future(deliver(events, _never_skips))
        try:
            recorded = await self.record(session, events)
        except asyncio.CancelledError:
            sending.cancel()  # the relay is stopping and rolls back: the batch goes again
            raise
        except Exception:
            await asyncio.wait({sending})  # the relay rolls back once the send is over
            if not sending.cancelled():
                sending.exception()  # retrieved; the claim's error is the one raised
            raise
        await sending

        def unrecorded(handler: RegisteredHandler, event: Envelope) -> bool:
            return handler.spec.skips is not None and (handler.id, event.id) not in recorded

        rest = [e for e in events if any(unrecorded(h, e) for h in self.handlers.for_event(e.type))]
        if rest:
            await deliver(rest, unrecorded)

    async def record(self, session: AsyncSession, events: Sequence[Envelope]) -> set[Pair]:
        """Ask the skips of a small batch and record, in the relay's ``session``, the pairs
        whose handlers skip them; the in-process broker queues the rest once the batch
        commits. A failing claim aborts the relay's transaction: it is raised, and the
        relay's next tries send every pair for a while."""
        self._uncounted = []
        if not self.asked(session, events):
            return set()
        try:
            return await self._record(session, events)
        except Exception as exc:
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
            log.warning(
                "the relay could not record skipped events (%s); it sends them to their "
                "handlers for the next %.0f s",
                exc,
                PAUSE_AFTER_FAILURE_SECONDS,
            )
            raise

    def count_committed(self) -> None:
        """The relay committed: count its recorded pairs as their handlers' ``skipped``."""
        for handler_id, seconds in self._uncounted:
            record_handler(self.context, handler_id, "skipped", seconds)
        self._uncounted = []

    async def _record(self, session: AsyncSession, events: Sequence[Envelope]) -> set[Pair]:
        recorded: set[Pair] = set()
        deadline = time.monotonic() + SKIPS_BUDGET_SECONDS
        for event in events:
            for handler in self.handlers.for_event(event.type):
                if handler.spec.skips is None:
                    continue
                started = time.monotonic()
                if not await self._skips(handler, event, deadline - started):
                    continue
                if await claim(session, handler, event):
                    recorded.add((handler.id, event.id))
                    self._uncounted.append((handler.id, time.monotonic() - started))
        return recorded

    async def _skips(self, handler: RegisteredHandler, event: Envelope, seconds: float) -> bool:
        """``skips`` on a session of its own, as a worker asks it (a session's first
        statement goes without ``BEGIN``; one session shared by the batch would begin a
        transaction for the second handler's read), within what is left of the budget; a
        failure or a late answer is a no: the delivery asks again."""
        if seconds <= 0:
            return False
        try:
            async with self.context.session_factory() as reader:
                return await asks_to_skip(reader, handler, event, self.context, seconds)
        except Exception as exc:
            log.warning(
                "handler %s: skips failed on event %s at the relay (%s); sent to it",
                handler.id,
                event.id,
                exc or type(exc).__name__,
            )
            return False


def _never_skips(handler: RegisteredHandler, _event: Envelope) -> bool:
    return handler.spec.skips is None
