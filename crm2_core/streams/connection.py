"""One SSE connection: resume from the log, then live events, each checked for this principal.

The order is what makes a resume exact. The connection subscribes to the
hub *first* (events from then on are buffered), learns the highest position
the hub had dispatched (``mark``), replays the committed log after
``Last-Event-ID`` until the log has caught up with ``mark`` (an event the
relay handed to the hub just before its commit may take a moment), then
sends the buffer, skipping every position it has already passed. Positions
are strictly increasing and committed in order, so ``position > last`` is
the whole de-duplication.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import UTC, datetime
from typing import Any

from crm2_core.errors import Unauthorized
from crm2_core.events.envelope import Envelope
from crm2_core.http.principal import permitted
from crm2_core.streams.channels import RegisteredChannel
from crm2_core.streams.hub import Subscription
from crm2_core.streams.response import Writer, encode_message, frame
from crm2_core.streams.service import Streams
from crm2_hookspecs import Principal

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 3000  # EventSource's reconnection delay, sent as ``retry:``
REPLAY_PAGE = 500
CATCH_UP_WAIT_SECONDS = 10.0
LIFETIME = "lifetime"
# opened with an access token that has now expired: reconnect with a fresh one
TOKEN_EXPIRED = "token-expired"
ERROR = "error"
# the principal's rights changed while the stream was open: its credentials were
# revoked (the reconnect gets 401) or it no longer holds the channel's permission (403)
REVOKED = "credentials-revoked"
FORBIDDEN = "forbidden"
DISCONNECTED = "disconnected"  # the client went away: nothing more is sent
REPLAY_TOO_LONG = "replay-too-long"
LOG_REWOUND = "log-rewound"  # the log went back (a database restored to an earlier point)


def opening_message(position: int, heartbeat_seconds: float) -> bytes:
    """The first message: where the stream starts, so a client can resume before any event,
    and how often it hears a heartbeat, so a client can tell a silently dead connection
    (no reset, nothing more read) from a quiet channel and reconnect."""
    seconds = int(heartbeat_seconds) if float(heartbeat_seconds).is_integer() else heartbeat_seconds
    return encode_message(
        data=json.dumps({"position": position, "heartbeat_seconds": seconds}),
        event="connected",
        id=str(position),
        retry=RETRY_MILLISECONDS,
    )


def reset_message(position: int, behind: int) -> bytes:
    """Instead of a replay too long to be worth it: reload your data, the stream goes on
    live from ``position`` (its ``id:``, so that a reconnect resumes from there)."""
    return encode_message(
        data=json.dumps({"reason": REPLAY_TOO_LONG, "position": position, "behind": behind}),
        event="reset",
        id=str(position),
    )


def rewound_message(position: int) -> bytes:
    """The log now ends before what the stream has sent (a database restored to an earlier
    point): reload your data, the stream goes on live from ``position`` (its ``id:``)."""
    return encode_message(
        data=json.dumps({"reason": LOG_REWOUND, "position": position}),
        event="reset",
        id=str(position),
    )


def closing_message(reason: str) -> bytes:
    """The last message of a stream the server ends: the client reconnects and resumes."""
    return encode_message(
        data=json.dumps({"reason": reason}), event="reconnect", retry=RETRY_MILLISECONDS
    )


def heartbeat_message() -> bytes:
    """A comment line: ignored by EventSource, keeps proxies from timing the stream out."""
    return encode_message(comment=f"ping - {datetime.now(UTC)}")


class Connection:
    def __init__(
        self,
        streams: Streams,
        channel: RegisteredChannel,
        principal: Principal,
        last_event_id: int | None,
    ) -> None:
        self.streams = streams
        self.context = streams.context
        self.channel = channel
        self.principal = principal
        self.resume_from = last_event_id
        self.last = 0  # the highest position passed (sent or hidden)
        loop = asyncio.get_running_loop()
        self._time = loop.time
        self.deadline = self._time() + self.context.settings.sse_max_connection_seconds
        self.end_reason = LIFETIME
        expires_at = principal.attributes.get("expires_at")
        if isinstance(expires_at, int | float):
            # an access token's or an API key's stream dies with it, as its requests would
            expires = self._time() + (expires_at - time.time())
            if expires < self.deadline:
                self.deadline, self.end_reason = expires, TOKEN_EXPIRED
        self.heartbeat = self.context.settings.sse_heartbeat_seconds
        self.gone = False
        self._subscription: Subscription | None = None
        # Live events straight to the socket (``deliver``): the server's writer, and what
        # decides which events this principal sees when the channel's rule needs no await.
        self._write: Writer | None = None
        self.audience: Hashable | None = channel.audience(principal, self.context)

    def use_writer(self, write: Writer) -> None:
        self._write = write

    def disconnect(self) -> None:
        """The client went away: end the stream (its subscription) at once."""
        self.gone = True
        if self._subscription is not None:
            self._subscription.close(DISCONNECTED)

    async def events(self) -> AsyncIterator[bytes]:
        """The messages of this connection, heartbeats included; ends with a farewell
        when the hub closes the subscription (shutdown, slow consumer, resync)."""
        subscription, mark = self.streams.hub.subscribe(
            self.channel.channel, self.context.settings.sse_queue_size, self.principal
        )
        self._subscription = subscription
        # The principal was authenticated before this subscription existed: a change to
        # its rights heard in between marked nothing. Check once now that changes do.
        subscription.mark_stale()
        if self.gone:
            subscription.close(DISCONNECTED)
        try:
            async for message in self._run(subscription, mark):
                yield message
        except Exception:
            log.exception("stream %s failed", self.channel.name)
            yield closing_message(ERROR)
        finally:
            self.streams.hub.unsubscribe(subscription)

    async def _run(self, subscription: Subscription, mark: int | None) -> AsyncIterator[bytes]:
        top = await self.streams.source.top()
        self.last = top if self.resume_from is None else self.resume_from
        yield opening_message(self.last, self.heartbeat)
        # A replay of the whole retained log, by many streams at once, costs more than
        # the client reloading its data: past the limit it is told to, and goes on live.
        limit = self.context.settings.sse_max_replay_events
        if limit and top - self.last > limit:
            behind, self.last = top - self.last, top
            yield reset_message(top, behind)
        async for message in self._replay(subscription, top, mark):
            yield message
        async for message in self._live(subscription):
            yield message

    async def _replay(
        self, subscription: Subscription, top: int, mark: int | None
    ) -> AsyncIterator[bytes]:
        """The log after ``self.last``, until it has caught up with what the hub dispatched."""
        types = self.streams.event_types(self.channel)
        give_up = self._time() + CATCH_UP_WAIT_SECONDS
        cursor = self.last
        while True:
            # ``top`` was read before these pages: they cover every position up to it.
            # A fresh stream starts at ``top``: nothing to read until the log grows.
            page_full = bool(types) and cursor < top
            while page_full:
                page = await self.streams.source.read(cursor, REPLAY_PAGE, types)
                for envelope in page:
                    cursor = envelope.position or cursor
                    message = await self._message(envelope)
                    if message is not None:
                        yield message
                page_full = len(page) == REPLAY_PAGE
                if subscription.closed is not None or self._time() > self.deadline:
                    return  # the live phase sends the closing message
            if mark is None or top >= mark or subscription.rewound is not None:
                return  # (a log gone back never reaches ``mark``: the live phase resets)
            if self._time() > give_up:
                subscription.close(ERROR)
                return
            await asyncio.sleep(0.05)
            top = await self.streams.source.top()

    async def _live(self, subscription: Subscription) -> AsyncIterator[bytes]:
        next_ping = self._time() + self.heartbeat
        if self._write is not None:
            subscription.direct = self
        while True:
            if subscription.stale:
                await self._recheck(subscription)
            rewound = subscription.rewound
            if rewound is not None and subscription.closed is None:
                subscription.rewound = None
                self.last = rewound
                yield rewound_message(rewound)
                continue
            now = self._time()
            remaining = self.deadline - now
            if remaining <= 0:
                yield closing_message(self.end_reason)
                return
            if now >= next_ping and subscription.closed is None:
                yield heartbeat_message()
                next_ping = now + self.heartbeat
                continue
            envelope = await subscription.next(wait_seconds=min(remaining, next_ping - now))
            if envelope is None:
                if subscription.closed == DISCONNECTED:
                    return
                if subscription.closed is not None:
                    yield closing_message(subscription.closed)
                    return
                continue
            message = await self._message(envelope)
            if message is not None:
                yield message

    async def _recheck(self, subscription: Subscription) -> None:
        """The principal's rights changed somewhere: close unless they still open this channel."""
        subscription.stale = False
        try:
            principal = await self.context.authenticator.recheck(self.principal)
        except Unauthorized:
            subscription.close(REVOKED)
            return
        if not permitted(self.context, principal, self.channel.permission):
            subscription.close(FORBIDDEN)
            return
        self.principal = subscription.principal = principal
        self.audience = self.channel.audience(principal, self.context)

    async def _message(self, envelope: Envelope) -> bytes | None:
        position = envelope.position
        if position is None or position <= self.last:
            return None
        subscription = self._subscription
        if subscription is not None:
            if subscription.stale:
                await self._recheck(subscription)
            if subscription.closed is not None:
                return None  # nothing more goes out; the loops send the farewell
        self.last = position
        if not await self.channel.can_see(self.principal, envelope, self.context):
            return None
        return self.streams.messages(envelope)

    def deliver(self, events: Sequence[Envelope], shared: dict[Any, Any]) -> bool:
        """Called by the hub while this connection is parked (``Subscription.parked``):
        write the events this principal may see to the socket now.

        ``False`` leaves them to the buffer and this connection's task: a rule that
        needs an await, an event already passed in the replay, a lifetime or token
        that has run out, a socket that is not taking bytes. Connections of the same
        audience share the bytes of a batch (``shared``), checked and framed once.
        """
        audience, write = self.audience, self._write
        first = events[0].position
        if (
            audience is None
            or write is None
            or first is None
            or first <= self.last
            or self._time() >= self.deadline
        ):
            return False
        plan = shared.get(audience)
        if plan is None:
            plan = shared[audience] = self._plan(audience, events)
        data, last = plan
        if data and not write(data):
            return False
        self.last = last
        return True

    def _plan(self, audience: Hashable, events: Sequence[Envelope]) -> tuple[bytes, int]:
        """The chunks of the events ``audience`` sees, and the last position passed."""
        messages = self.streams.messages
        data = b"".join(frame(messages(e)) for e in events if self.channel.sees(audience, e))
        last = events[-1].position
        assert last is not None  # the hub dispatches logged events only
        return data, last
