"""The per-process fan-out of relayed events to the open SSE connections.

Every connection holds a :class:`Subscription`: a bounded buffer of the
events of its channel. The hub never waits for a connection: when a
subscription's buffer would grow past its limit the subscription is closed
(the connection then ends with a retry hint and the client resumes from the
log with ``Last-Event-ID``), so a slow client never slows the others.

The hub is fed in log order (the relay's listener, or the Redis subscription
when several processes serve streams) and keeps the highest position it has
seen. Positions are contiguous, so a hole means events this process never
heard of (relayed by a worker, or a pub/sub message lost while Redis was
away): they are read back from the committed log before the newer ones go
out. A periodic :meth:`Hub.catch_up` does the same when nothing new arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from crm2_core.events.envelope import Envelope
from crm2_hookspecs import Principal, SseChannel

log = logging.getLogger(__name__)
T = TypeVar("T")

# A hole larger than this is not read back: every subscription is closed instead
# and each connection resumes from the log on its own.
MAX_BACKFILL = 1000

OVERFLOW = "slow-consumer"
SHUTDOWN = "shutdown"
RESYNC = "resync"


@dataclass(frozen=True)
class LogSource:
    """How the hub reads the committed log: its top position, and events after one."""

    top: Callable[[], Awaitable[int]]
    # read(after, limit, types=None): events after a position, in order
    read: Callable[..., Awaitable[list[Envelope]]]


class LogUnreadable(Exception):
    """The hub could not read the event log (the database is down): already logged, once
    per outage (see :meth:`Hub.read_log`); callers need not log it again."""


class DirectSink(Protocol):
    """A connection that can write events to its socket at once, from the dispatch itself."""

    def deliver(self, events: Sequence[Envelope], shared: dict[Any, Any]) -> bool:
        """Write (or pass over, as its rights say) ``events`` now; ``False`` when it cannot.

        ``shared`` is one dict per dispatched batch and channel, for what connections
        of the same audience can reuse (the bytes to write).
        """
        ...


def _deliver(sink: DirectSink, events: Sequence[Envelope], shared: dict[Any, Any]) -> bool:
    try:
        return sink.deliver(events, shared)
    except Exception:  # one connection's failure must not hold up the others
        log.exception("streams: a direct delivery failed; the events go through the buffer")
        return False


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """One connection's buffer of events of its channel, bounded to ``limit`` pending events.

    Thousands are idle at once, so an idle one holds no buffer and no event
    object: a waiting :meth:`next` parks on one future, woken by :meth:`offer`,
    :meth:`close` or its timer.
    """

    def __init__(self, channel: SseChannel, limit: int, principal: Principal | None = None) -> None:
        self.channel = channel
        self.limit = limit
        # who reads it, and whether their rights must be checked again before the next
        # message (set by :meth:`Hub.recheck` when their credentials or roles changed)
        self.principal = principal
        self.stale = False
        # set by the connection once it only waits for live events (see ``parked``)
        self.direct: DirectSink | None = None
        self.closed: str | None = None
        # the log's end after it went back (a database restored to an earlier point): the
        # connection sends ``event: reset`` and goes on from there (see :meth:`Hub.catch_up`)
        self.rewound: int | None = None
        self._items: deque[Envelope] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    @property
    def parked(self) -> bool:
        """Its connection waits in :meth:`next` with nothing pending and nothing to check:
        an event may go to it directly (``direct``) instead of through the buffer and a
        wake-up, without overtaking anything and without skipping a rights check."""
        waiter = self._waiter
        return (
            waiter is not None
            and not waiter.done()
            and not self._items
            and not self.stale
            and self.rewound is None
            and self.closed is None
        )

    def offer(self, events: Sequence[Envelope]) -> None:
        """Buffer ``events``; close instead when that would pass the limit.

        A batch larger than the limit is still taken into an empty buffer: a
        connection that keeps up is never cut off for one large relay batch.
        """
        if self.closed is not None:
            return
        if self._items and len(self._items) + len(events) > self.limit:
            self.close(OVERFLOW)
            return
        if self._items is None:
            self._items = deque(events)
        else:
            self._items.extend(events)
        self._wake()

    def mark_stale(self) -> None:
        """Have the connection check its principal again before it sends anything more."""
        if self.closed is None:
            self.stale = True
            self._wake()

    def rewind(self, position: int) -> None:
        """The log now ends at ``position``, before events this subscription may hold or
        have passed: drop them and have the connection start again from there."""
        if self.closed is None:
            self._items = None  # events of a history the log no longer holds
            self.rewound = position
            self._wake()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._items = None
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _release(self._waiter)

    async def next(self, *, wait_seconds: float) -> Envelope | None:
        """The next buffered event; ``None`` when closed or after ``wait_seconds``."""
        if not self._items and self.closed is None and self.rewound is None and wait_seconds > 0:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(wait_seconds, _release, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.closed is not None or not self._items:
            return None
        return self._items.popleft()


class Hub:
    def __init__(self, source: LogSource, poll_seconds: float) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self.last_position: int | None = None
        self._log_top = 0  # the highest top of the log read so far (see ``_in_log``)
        self.closed = False
        self._subscriptions: set[Subscription] = set()
        self._lock = asyncio.Lock()
        self._poll_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._unreadable = False  # an outage of the log is logged as started, not as over
        # Called with every batch this process dispatches, subscribers or not: how
        # other core services (auth's caches) hear of events relayed anywhere.
        self.taps: list[Callable[[Sequence[Envelope]], None]] = []
        # Called when events are skipped unseen (a hole too large to read back) or the log
        # went back (a restored database): the taps' owners forget whatever those events
        # might have changed, and encoded messages are keyed by a position now reused.
        self.lost: list[Callable[[], None]] = []

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    def channel_counts(self) -> dict[str, int]:
        """Open subscriptions by channel name (the ``crm2_sse_connections`` metric)."""
        counts: dict[str, int] = {}
        for subscription in self._subscriptions:
            name = subscription.channel.name
            counts[name] = counts.get(name, 0) + 1
        return counts

    def subscribe(
        self, channel: SseChannel, limit: int, principal: Principal | None = None
    ) -> tuple[Subscription, int | None]:
        """Register a connection; return it with the highest position dispatched so far.

        Everything after that position reaches the subscription; everything up
        to it is (or will shortly be) in the committed log. Await :meth:`ready`
        first, so that the position is known.
        """
        subscription = Subscription(channel, limit, principal)
        if self.closed:
            subscription.close(SHUTDOWN)
        else:
            self._subscriptions.add(subscription)
        return subscription, self.last_position

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def recheck(self, affected: Callable[[Principal], bool]) -> int:
        """Mark every open subscription whose principal is ``affected`` stale: its
        connection checks the principal's rights again before it sends anything more
        (auth calls this when credentials, keys or roles change). Returns how many."""
        marked = 0
        for subscription in self._subscriptions:
            principal = subscription.principal
            if principal is not None and affected(principal):
                subscription.mark_stale()
                marked += 1
        return marked

    async def publish(self, events: Sequence[Envelope], *, verify: bool = False) -> None:
        """Dispatch a batch in log order, reading back any hole before it.

        ``verify`` for a batch from outside this process (Redis pub/sub): the log is the
        truth, and a message claiming positions the log does not hold (a forged or
        corrupt one) must not move the hub past events still to come, which would then
        be dropped as already seen. Such a batch is ignored; the log poll brings the real
        events. The log is read only when the batch ends past its top as last read.
        (The content of a position the log holds is taken as the message says: reading
        the rows instead costs a range read per message, measured at +10 to +35 % of the
        dispatch path; docs/streams.md, "Several server processes".)
        """
        async with self._lock:
            fresh = [
                e
                for e in events
                if e.position is not None
                and (self.last_position is None or e.position > self.last_position)
            ]
            if not fresh:
                return
            first = fresh[0].position
            assert first is not None
            if verify and not await self._in_log(fresh):
                return
            hole = self.last_position is not None and first > self.last_position + 1
            if hole and not await self._backfill(self.last_position or 0, first - 1):
                return
            self._dispatch(fresh)

    async def _in_log(self, fresh: Sequence[Envelope]) -> bool:
        """Whether ``fresh`` (positions increasing) is a run of consecutive positions the
        committed log reaches (the relay hands batches on only once they are committed)."""
        positions = [e.position for e in fresh]
        first, last = positions[0], positions[-1]
        assert first is not None and last is not None
        if positions != list(range(first, last + 1)):
            log.warning("streams: ignoring a pub/sub message whose positions are not consecutive")
            return False
        if last > self._log_top:
            self._log_top = max(self._log_top, await self.read_log(self.source.top))
            if last > self._log_top:
                log.warning(
                    "streams: ignoring a pub/sub message beyond the end of the event log "
                    "(position %d, log ends at %d)",
                    last,
                    self._log_top,
                )
                return False
        return True

    async def catch_up(self) -> None:
        """Dispatch committed events this hub has not seen (relayed elsewhere or lost).

        A log that ends before what this hub has dispatched went back (a database restored
        to an earlier point): events from there on would be dropped as already seen, so
        every subscription is rewound to the log's end (its client is told to reload)."""
        async with self._lock:
            top = await self.read_log(self.source.top)
            self._log_top = max(self._log_top, top)
            if self.last_position is None:
                self.last_position = top
            elif top > self.last_position:
                await self._backfill(self.last_position, top)
            elif top < self.last_position:
                self._rewind(top)

    async def read_log(self, read: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``read(*args)`` on the log; its failure raises :class:`LogUnreadable`. An outage
        (the database down) is logged once when it starts, with its traceback, and once
        when the log is read again: not once per pub/sub message and per poll."""
        try:
            result = await read(*args)
        except Exception as exc:
            if not self._unreadable:
                self._unreadable = True
                log.warning(
                    "streams: cannot read the event log (%s: %s); live events wait until it "
                    "can be read again (logged once it can)",
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
            raise LogUnreadable(f"cannot read the event log ({type(exc).__name__})") from exc
        if self._unreadable:
            self._unreadable = False
            log.warning("streams: the event log can be read again; live events flow again")
        return result

    def _rewind(self, top: int) -> None:
        log.warning(
            "streams: the event log ends at position %d, before %d, which this process "
            "has dispatched (a database restored to an earlier point?); %d streams are "
            "reset to %d",
            top,
            self.last_position,
            len(self._subscriptions),
            top,
        )
        self._forget()
        for subscription in list(self._subscriptions):
            subscription.rewind(top)
        # positions past ``top`` are no longer in the log: a message claiming them is not
        # to be believed until the log reaches them again
        self.last_position = self._log_top = top

    def _forget(self) -> None:
        for lost in self.lost:
            try:
                lost()
            except Exception:
                log.exception("streams: a lost-events callback failed")

    async def _backfill(self, after: int, until: int) -> bool:
        """Dispatch the committed events in ``(after, until]``; ``False`` if it resynced instead."""
        if not self._subscriptions and not self.taps:
            self.last_position = max(self.last_position or 0, until)
            return True
        if until - after > MAX_BACKFILL:
            self._forget()  # the taps will never see these events
            if self._subscriptions:
                log.warning(
                    "streams missed %d events; closing %d connections to resume from the log",
                    until - after,
                    len(self._subscriptions),
                )
            self._close_all(RESYNC)
            self.last_position = until
            return False
        missing = [
            e
            for e in await self.read_log(self.source.read, after, until - after)
            if e.position is not None and e.position <= until
        ]
        if missing:
            self._dispatch(missing)
        self.last_position = max(self.last_position or 0, until)
        return True

    def _dispatch(self, events: Sequence[Envelope]) -> None:
        for tap in self.taps:
            try:
                tap(events)
            except Exception:  # a tap must never hold up the streams
                log.exception("streams: an event tap failed")
        by_channel: dict[str, list[Envelope]] = {}
        shared: dict[str, dict[Any, Any]] = {}
        for subscription in list(self._subscriptions):
            channel = subscription.channel
            matching = by_channel.get(channel.name)
            if matching is None:
                matching = by_channel[channel.name] = [e for e in events if channel.matches(e.type)]
                shared[channel.name] = {}
            if matching:
                # A parked connection takes the batch straight to its socket: no wake-up,
                # no task step and no middleware per event (each connection's task would
                # otherwise do all that once per event and connection).
                direct = subscription.direct
                if (
                    direct is None
                    or not subscription.parked
                    or not _deliver(direct, matching, shared[channel.name])
                ):
                    subscription.offer(matching)
            if subscription.closed is not None:
                self._subscriptions.discard(subscription)
        last = events[-1].position
        if last is not None:
            self.last_position = max(self.last_position or 0, last)

    def _close_all(self, reason: str) -> None:
        for subscription in list(self._subscriptions):
            subscription.close(reason)
        self._subscriptions.clear()

    async def ready(self) -> None:
        """Learn the log's top position if not known yet (before the first subscription)."""
        if self.last_position is None:
            await self.catch_up()

    async def start(self) -> None:
        self.closed = False
        self._stop = asyncio.Event()
        try:  # the first connection retries; start-up must not fail on it
            await self.ready()
        except LogUnreadable:
            pass  # logged by ``read_log``
        except Exception as exc:
            log.warning("streams could not read the event log at start (%s)", exc)
        self._poll_task = asyncio.create_task(self._poll_forever(), name="crm2-streams-catch-up")

    async def close(self, grace_seconds: float = 5.0) -> None:
        """End every stream (their connections close with a retry hint) and stop polling.

        The poll is let finish its query rather than cancelled in the middle of
        it: a connection cancelled mid-transaction may never be given back.
        """
        self.closed = True
        self._stop.set()
        self._close_all(SHUTDOWN)
        task, self._poll_task = self._poll_task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=grace_seconds)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll_forever(self) -> None:
        while not self.closed:
            try:
                await self.catch_up()
            except LogUnreadable:
                pass  # logged by ``read_log``, once per outage
            except Exception:
                log.exception("streams: the log poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
