"""Fan-out across processes through Redis pub/sub (when ``CRM2_REDIS_URL`` is set).

The relaying process (``crm2 serve`` or ``crm2 worker``) PUBLISHes each relayed
batch to ``<CRM2_REDIS_PREFIX>events``; every serving process runs one
subscription that feeds its local hub, the relaying one included, so each
event reaches the hub of every process exactly once. Pub/sub forgets what it
could not deliver: the hub reads any hole back from the log (see ``hub.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from crm2_core.events.envelope import Envelope
from crm2_core.redis_guard import REDIS_TIMEOUT, RedisGuard, RedisUnavailable
from crm2_core.streams.hub import Hub, LogUnreadable

log = logging.getLogger(__name__)

MESSAGE_EVENTS = 500  # events per pub/sub message
RECONNECT_SECONDS = 0.5  # the first retry of a lost subscription, doubling up to the max
MAX_RECONNECT_SECONDS = 10.0
# a quiet subscription asks Redis for a PONG this often: a hung connection (accepted,
# never answered) is noticed within PING_SECONDS + REDIS_TIMEOUT
PING_SECONDS = 1.0


def pubsub_channel(prefix: str) -> str:
    return f"{prefix}events"


class RedisPublisher:
    """The bus listener of a relaying process: one PUBLISH per (part of a) batch.

    Each PUBLISH is bounded in time and skipped while Redis is down (until the guard's
    back-off ends): the relay awaits this listener, and a hung Redis must not hold the
    event log up. What was not published the hubs read back from the log."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.channel = pubsub_channel(prefix)
        self.guard = RedisGuard("streams fan-out (live events wait for the log poll)")

    async def __call__(self, events: Sequence[Envelope]) -> None:
        if self.guard.backing_off():
            return
        for start in range(0, len(events), MESSAGE_EVENTS):
            part = events[start : start + MESSAGE_EVENTS]
            payload = json.dumps([e.model_dump(mode="json") for e in part])
            try:
                await self.guard.call(lambda p=payload: self.redis.publish(self.channel, p))  # type: ignore[misc]
            except RedisUnavailable:
                return


class RedisSubscriber:
    """One subscription per process, feeding the local hub; reconnects on its own.

    ``listen()`` would wait forever on a Redis that accepts and never answers: live
    events would then come from the log poll only, and nobody would know. So the
    subscription is read with a deadline: after ``ping_seconds`` without a message it
    sends a PING, and no answer within ``answer_seconds`` counts as a lost connection
    (subscribing, likewise, must be confirmed within ``answer_seconds``). An outage is
    logged once when it starts and once when the subscription is back; meanwhile it
    retries with a back-off doubling up to ``MAX_RECONNECT_SECONDS``.
    """

    def __init__(
        self,
        redis: Any,
        prefix: str,
        hub: Hub,
        *,
        ping_seconds: float = PING_SECONDS,
        answer_seconds: float = REDIS_TIMEOUT,
    ) -> None:
        self.redis = redis
        self.channel = pubsub_channel(prefix)
        self.hub = hub
        self.ping_seconds = ping_seconds
        self.answer_seconds = answer_seconds
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # closings of dead connections left to finish on their own (see ``_discard``)
        self._closing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Subscribe in the background: start-up never waits on Redis (until the
        subscription is up, live events come from the hub's log poll)."""
        self._task = asyncio.create_task(self._run(), name="crm2-streams-redis")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._closing:  # a healthy Redis closes at once; a hung one is not waited for
            await asyncio.wait(set(self._closing), timeout=self.answer_seconds)

    async def _run(self) -> None:
        backoff = RECONNECT_SECONDS
        outage = False  # logged as started, not yet as over
        while True:
            pubsub = self.redis.pubsub()
            try:
                async with asyncio.timeout(self.answer_seconds):
                    await pubsub.subscribe(self.channel)
                    await self._confirmed(pubsub)
                self.subscribed.set()
                backoff = RECONNECT_SECONDS
                if outage:
                    outage = False
                    log.warning("streams: subscribed to Redis again; live events flow again")
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                if not outage:
                    outage = True
                    log.warning(
                        "streams: no Redis subscription (%s: %s); live events from other "
                        "processes wait for the log poll; retrying with a back-off up to %gs",
                        type(exc).__name__,
                        exc,
                        MAX_RECONNECT_SECONDS,
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RECONNECT_SECONDS)
            finally:
                self._discard(pubsub)

    async def _confirmed(self, pubsub: Any) -> None:
        """Wait for Redis to confirm the SUBSCRIBE (the caller bounds the wait)."""
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None and message.get("type") == "subscribe":
                return

    async def _listen(self, pubsub: Any) -> None:
        """Deliver messages until the connection fails or stops answering PINGs."""
        loop = asyncio.get_running_loop()
        heard = loop.time()  # the last sign of life: any message, the PONG included
        pinged: float | None = None  # a PING waits for its answer since then
        while True:
            now = loop.time()
            if pinged is None and now - heard >= self.ping_seconds:
                async with asyncio.timeout(self.answer_seconds):
                    await pubsub.ping()
                pinged = now
            if pinged is not None:
                deadline = pinged + self.answer_seconds
                if now >= deadline:
                    raise ConnectionError(
                        f"Redis did not answer a PING within {self.answer_seconds:g}s"
                    )
            else:
                deadline = heard + self.ping_seconds
            wait = max(0.0, deadline - now)
            # the outer bound: a read the client library would not time out itself
            async with asyncio.timeout(wait + self.answer_seconds):
                message = await pubsub.get_message(timeout=wait)
            if message is None:
                continue
            heard, pinged = loop.time(), None
            if message.get("type") == "message":
                await self._deliver(message["data"])

    def _discard(self, pubsub: Any) -> None:
        """Close a subscription's connection without waiting on it: closing a socket to a
        hung peer may itself hang (the client library does not let it be cancelled)."""
        task = asyncio.ensure_future(pubsub.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("streams: closing a Redis subscription failed", exc_info=task.exception())

    async def _deliver(self, data: bytes | str) -> None:
        try:
            events = [Envelope.model_validate(item) for item in json.loads(data)]
        except (ValueError, TypeError) as exc:
            log.warning("streams: ignoring a malformed pub/sub message (%s)", exc)
            return
        try:
            # a message anyone with access to Redis may have written: checked against the log
            await self.hub.publish(events, verify=True)
        except LogUnreadable:  # the database is down: the hub logs the outage once
            pass
        except Exception:  # the hub reads the hole back from the log on its next message
            log.exception("streams: could not dispatch a pub/sub message")
