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
from crm2_core.redis_guard import RedisGuard, RedisUnavailable
from crm2_core.streams.hub import Hub

log = logging.getLogger(__name__)

MESSAGE_EVENTS = 500  # events per pub/sub message
MAX_RECONNECT_SECONDS = 10.0


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
    """One subscription per process, feeding the local hub; reconnects on its own."""

    def __init__(self, redis: Any, prefix: str, hub: Hub) -> None:
        self.redis = redis
        self.channel = pubsub_channel(prefix)
        self.hub = hub
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="crm2-streams-redis")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), wait_seconds)
        if not self.subscribed.is_set():
            log.warning("streams: not subscribed to Redis yet; live events wait for the log poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning(
                    "streams: Redis subscription lost (%s); retrying in %.1fs", exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _deliver(self, data: bytes | str) -> None:
        try:
            events = [Envelope.model_validate(item) for item in json.loads(data)]
        except (ValueError, TypeError) as exc:
            log.warning("streams: ignoring a malformed pub/sub message (%s)", exc)
            return
        try:
            await self.hub.publish(events)
        except Exception:  # the hub reads the hole back from the log on its next message
            log.exception("streams: could not dispatch a pub/sub message")
