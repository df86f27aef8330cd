"""The event bus of one process: types, handlers, the broker and the relay loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, event, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from crm2_core.context import TRACING
from crm2_core.db import utcnow
from crm2_core.db.plans import analyze_grown_tables
from crm2_core.events.envelope import Envelope
from crm2_core.events.handlers import HandlerRegistry, Pairs, RegisteredHandler
from crm2_core.events.models import AppliedEvent, EventRecord
from crm2_core.events.relay import relay_batch
from crm2_core.events.relay_skips import RelaySkips
from crm2_core.events.types import EventTypeRegistry
from crm2_hookspecs import EventHandler

if TYPE_CHECKING:
    from crm2_core.context import AppContext
    from crm2_core.plugins import PluginRegistry


log = logging.getLogger(__name__)
PENDING_FLAG = "crm2_events_pending"  # set by publish() in session.info
MAX_RELAY_BACKOFF_SECONDS = 30.0
# Another process's relay held the lock: it may have read the log before our commit,
# so look again after this (doubling while it stays busy, up to the relay interval).
RELAY_BUSY_RETRY_SECONDS = 0.005
# how often, at most, a relay with work looks for tables that outgrew their statistics
STATISTICS_EVERY_SECONDS = 2.0


class Broker(Protocol):
    async def start(self) -> None: ...

    async def deliver(self, events: Sequence[Envelope], to: Pairs | None = None) -> None: ...

    async def deliver_to(self, handler: RegisteredHandler, event: Envelope) -> None: ...

    async def close(self) -> None: ...


Listener = Callable[[Sequence[Envelope]], Awaitable[None]]


async def _nowhere(_events: Sequence[Envelope]) -> None:
    return None


def collect_types(registry: PluginRegistry) -> EventTypeRegistry:
    types = EventTypeRegistry()
    for plugin, classes in registry.call("crm2_event_types"):
        types.register(plugin, classes)
    return types


def collect_handlers(registry: PluginRegistry, context: AppContext) -> HandlerRegistry:
    handlers: list[RegisteredHandler] = []
    for plugin, spec in registry.collect("crm2_event_handlers", context=context):
        if not isinstance(spec, EventHandler):
            from crm2_core.errors import ConfigurationError

            raise ConfigurationError(
                f"{plugin}: crm2_event_handlers returned {spec!r}; return EventHandler records"
            )
        handlers.append(RegisteredHandler(f"{plugin}.{spec.name}", plugin, spec))
    return HandlerRegistry(handlers)


class EventBus:
    def __init__(
        self,
        context: AppContext,
        types: EventTypeRegistry,
        handlers: HandlerRegistry,
        broker: Broker,
    ) -> None:
        self.context = context
        self.types = types
        self.handlers = handlers
        self.broker = broker
        self.listeners: list[Listener] = []
        self.skips = RelaySkips(context, handlers)
        self._wake = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._busy = False  # the last relay_once found the lock taken
        self._analyzed_at = 0.0  # loop time of the last look for tables without statistics
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The application's own session class (crm2_core.db.engine.AppSession): a commit
        # that wrote events wakes this bus only, never another app's in the same process.
        self._session_class = context.session_class
        event.listen(self._session_class, "after_commit", self._after_commit)
        event.listen(self._session_class, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(PENDING_FLAG, False):
            self.wake()

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop(PENDING_FLAG, None)

    def detach(self) -> None:
        """Stop listening to the application's commits (the context is closing)."""
        for name, listener in (
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        ):
            if event.contains(self._session_class, name, listener):
                event.remove(self._session_class, name, listener)

    def wake(self) -> None:
        """Ask the relay to run now (called after a commit that wrote events)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self, *, relay: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        await self.broker.start()
        if relay:
            self._relay_task = asyncio.create_task(self._relay_forever(), name="crm2-relay")

    async def close(self, grace_seconds: float = 10.0) -> None:
        if self._relay_task is not None:
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait({self._relay_task}, timeout=grace_seconds)
            if not done:
                self._relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._relay_task
            self._relay_task = None
        await self.broker.close()
        self._loop = None

    async def _notify(self, events: Sequence[Envelope]) -> None:
        for listener in self.listeners:
            try:
                await listener(events)
            except Exception:  # a live stream must never hold up the log
                log.exception("event listener failed")

    async def relay_once(self) -> int:
        settings = self.context.settings
        if getattr(self.broker, "external", False):
            # A broker outside this process gets the batch before the positions commit
            # (a crash in between sends it again), and keeps no log of its own: the
            # relay records how far each handler's queue was fed (catch-up after a
            # plugin was switched off).
            moved = await relay_batch(
                self.context.session_factory,
                _nowhere,  # settle sends
                settings.relay_batch_size,
                after_commit=self._notify,
                tracked=list(self.handlers.handlers),
                on_busy=self._relay_busy,
                settle=self._to_broker,
            )
            if moved:
                self.skips.count_committed()
            return moved

        # The in-process broker's durability is the log (work left undone is queued
        # again at start): it gets the batch once the positions are committed, so its
        # handlers find them committed and never wait on the relay's row lock. What is
        # nothing to a handler is recorded in the relay's transaction (relay_skips) and
        # not queued: a transaction per idle handler and batch fewer.
        recorded: set[tuple[str, Any]] = set()

        async def settle(session: AsyncSession, events: Sequence[Envelope]) -> None:
            recorded.update(await self.skips.record(session, events))

        def unrecorded(handler: RegisteredHandler, event: Envelope) -> bool:
            return (handler.id, event.id) not in recorded

        async def committed(events: Sequence[Envelope]) -> None:
            await self.broker.deliver(self._traced(events), unrecorded if recorded else None)
            await self._notify(events)

        moved = await relay_batch(
            self.context.session_factory,
            _nowhere,
            settings.relay_batch_size,
            after_commit=committed,
            on_busy=self._relay_busy,
            settle=settle,
        )
        if moved:
            self.skips.count_committed()
        return moved

    def _traced(self, events: Sequence[Envelope]) -> Sequence[Envelope]:
        """The batch with a PRODUCER span per traced event, when tracing."""
        tracing = self.context.find(TRACING)
        return events if tracing is None else tracing.producer_envelopes(events)

    async def _to_broker(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """An external broker's share of a relay batch, in the relay's transaction:
        what is nothing to a handler is recorded there rather than sent (relay_skips)."""
        await self.skips.deliver(session, self._traced(events), self.broker.deliver)

    def _relay_busy(self) -> None:
        self._busy = True

    async def _relay_forever(self) -> None:
        settings = self.context.settings
        backoff = settings.relay_interval_seconds
        busy_retry = RELAY_BUSY_RETRY_SECONDS
        last_sweep = utcnow() - timedelta(days=1)
        while not self._stopping:
            try:
                self._busy = False
                moved = await self.relay_once()
                if moved:
                    await self._keep_statistics()
                backoff = settings.relay_interval_seconds
                if utcnow() - last_sweep > timedelta(hours=1):
                    await self.sweep()
                    last_sweep = utcnow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay could not forward events (%s); retrying in %.1fs", exc, backoff)
                moved = 0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RELAY_BACKOFF_SECONDS)
                continue
            if moved >= settings.relay_batch_size or self._stopping:
                continue
            if self._busy:
                await asyncio.sleep(busy_retry)
                busy_retry = min(busy_retry * 2, settings.relay_interval_seconds)
                continue
            busy_retry = RELAY_BUSY_RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.relay_interval_seconds)
            self._wake.clear()

    async def _keep_statistics(self) -> None:
        """While events pour in (a bulk import), at most every few seconds: ANALYZE the
        tables that doubled since their statistics (the log, the handlers' records, what
        the writers filled). The handlers' claims are planned on them; autovacuum would
        analyze a minute or more later, after a 50k-event import was handled with
        the planner's defaults for an empty table (a claim reading every event of
        its type)."""
        now = asyncio.get_running_loop().time()
        if now - self._analyzed_at < STATISTICS_EVERY_SECONDS:
            return
        self._analyzed_at = now
        try:
            await analyze_grown_tables(self.context.session_factory)
        except Exception as exc:  # statistics are an optimisation: never stop the relay
            log.warning("could not refresh table statistics (%s)", exc)

    async def sweep(self) -> None:
        """Drop relayed events (and their applied records) past the retention."""
        cutoff = utcnow() - timedelta(days=self.context.settings.events_retention_days)
        async with self.context.session_factory() as session:
            newest = select(func.max(col(EventRecord.position))).scalar_subquery()
            # The newest relayed event always stays: positions continue from it, so a
            # client's Last-Event-ID never points past the log after a quiet month.
            await session.execute(
                delete(EventRecord).where(
                    col(EventRecord.relayed_at).is_not(None),
                    col(EventRecord.occurred_at) < cutoff,
                    col(EventRecord.position) < newest,
                )
            )
            # Applied-records go with their events, never before: the newest event stays,
            # and its record is what keeps the next event of that subject in order.
            await session.execute(
                delete(AppliedEvent).where(
                    ~exists().where(col(EventRecord.id) == col(AppliedEvent.event_id))
                )
            )
            await session.commit()


def build_bus(context: AppContext) -> EventBus:
    """The bus for ``context``; ``memory://`` runs handlers in this process."""
    from crm2_core.events.memory_broker import MemoryBroker

    types = collect_types(context.plugins)
    handlers = collect_handlers(context.plugins, context)
    url = context.settings.broker_url
    broker: Broker
    if url.startswith("memory://"):
        broker = MemoryBroker(context, handlers, context.settings.handler_concurrency)
    else:
        from crm2_core.events.dramatiq_broker import DramatiqBroker

        broker = DramatiqBroker(context, handlers, url, context.settings.broker_queue_prefix)
    return EventBus(context, types, handlers, broker)
