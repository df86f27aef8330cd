"""The streams of one ``crm2 serve`` process: channels, the hub and how it is fed."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select

from crm2_core.context import EVENTS, SERVER_STOPPING
from crm2_core.errors import ServiceUnavailable, TooManyRequests
from crm2_core.events.envelope import Envelope
from crm2_core.events.models import EventRecord
from crm2_core.events.relay import read_log
from crm2_core.streams.channels import RegisteredChannel, collect_channels
from crm2_core.streams.fanout import RedisPublisher, RedisSubscriber
from crm2_core.streams.hub import Hub, LogSource
from crm2_core.streams.messages import EncodedMessages
from crm2_core.streams.response import ShutdownWatcher
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.context import AppContext


log = logging.getLogger(__name__)
T = TypeVar("T")


class TooManyStreams(TooManyRequests):
    slug, title = "too-many-streams", "Too many open streams"


class StreamsFull(ServiceUnavailable):
    """This process holds ``CRM2_SSE_MAX_CONNECTIONS`` streams: another may have room."""

    slug, title = "streams-full", "This server holds all the streams it can"


async def _uncancelled(coro: Coroutine[Any, Any, T]) -> T:
    """Run a database read to its end even if the caller is cancelled (a client went away).

    A session cancelled in the middle of a query may never give its connection
    back; on SQLite that connection would keep the database locked.
    """
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return await asyncio.shield(task)


def log_source(context: AppContext) -> LogSource:
    async def _top() -> int:
        async with context.session_factory() as session:
            top = (await session.execute(select(func.max(EventRecord.position)))).scalar()
            return int(top or 0)

    async def _read(after: int, limit: int, types: Sequence[str] | None) -> list[Envelope]:
        async with context.session_factory() as session:
            return await read_log(session, after, limit, types)

    async def top() -> int:
        return await _uncancelled(_top())

    async def read(after: int, limit: int, types: Sequence[str] | None = None) -> list[Envelope]:
        return await _uncancelled(_read(after, limit, types))

    return LogSource(top=top, read=read)


class Streams:
    """Kept in ``context.streams``; started and closed with the application."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.source = log_source(context)
        self.hub = Hub(self.source, context.settings.relay_interval_seconds)
        self.messages = EncodedMessages()
        self.hub.lost.append(self.messages.clear)  # a log gone back reuses positions
        self.channels: dict[str, RegisteredChannel] = {}
        self._listener: Any = None
        # open streams per (kind, id) of principal, in this process
        self._open: Counter[tuple[str, uuid.UUID]] = Counter()
        self._total = 0  # open streams in this process, all principals
        self._subscriber: RedisSubscriber | None = None
        # uvicorn waits for open connections before the lifespan shutdown: the
        # streams must end as soon as it starts stopping, not after.
        self._shutdown = ShutdownWatcher(self.hub.close, lambda: context.find(SERVER_STOPPING))

    def event_types(self, channel: RegisteredChannel) -> list[str]:
        bus = self.context.events
        return channel.event_types([cls.event_type for cls in bus.types.all()])

    def claim(self, principal: Principal) -> Callable[[], None]:
        """Count one more open stream of ``principal``: 429 past
        ``CRM2_SSE_MAX_CONNECTIONS_PER_PRINCIPAL``, 503 past ``CRM2_SSE_MAX_CONNECTIONS``
        in all. Returns its release, which gives the place back once (call it when the
        stream ends, however it ends)."""
        settings = self.context.settings
        key = (principal.kind, principal.id)
        # a client gone without a word is noticed by its next heartbeat at worst
        retry_after = settings.sse_heartbeat_seconds
        limit = settings.sse_max_connections_per_principal
        if limit and self._open[key] >= limit:
            raise TooManyStreams(
                f"{limit} streams are open with these credentials already; close one "
                "(one set of streams per browser, shared by its tabs: docs/streams.md)",
                retry_after=retry_after,
            )
        total = settings.sse_max_connections
        if total and self._total >= total:
            raise StreamsFull(
                f"this server process holds its {total} streams already; retry (another "
                "process behind the load balancer may have room)",
                retry_after=retry_after,
            )
        self._open[key] += 1
        self._total += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._total -= 1
                self._open[key] -= 1
                if self._open[key] <= 0:
                    del self._open[key]

        return release

    async def start(self) -> None:
        self.channels = collect_channels(self.context)
        bus = self.context.events
        redis = self.context.redis
        await self.hub.start()
        self._shutdown.start()
        if redis is not None:
            self._listener = RedisPublisher(redis, self.context.settings.redis_prefix)
            self._subscriber = RedisSubscriber(redis, self.context.settings.redis_prefix, self.hub)
            self._subscriber.start()
        else:
            self._listener = self._feed_local_hub
        bus.listeners.append(self._listener)

    async def _feed_local_hub(self, events: Sequence[Envelope]) -> None:
        await self.hub.publish(events)

    async def close(self) -> None:
        bus = self.context.find(EVENTS)
        if bus is not None and self._listener in bus.listeners:
            bus.listeners.remove(self._listener)
        self._listener = None
        await self._shutdown.close()
        await self.hub.close()
        if self._subscriber is not None:
            await self._subscriber.close()
            self._subscriber = None


def attach_publisher(context: AppContext) -> None:
    """In a process that relays but serves no streams (``crm2 worker``): publish to Redis.

    Without Redis there is nothing to do: the serving processes find the
    events in the log on their next poll.
    """
    if context.redis is not None:
        bus = context.events
        bus.listeners.append(RedisPublisher(context.redis, context.settings.redis_prefix))
