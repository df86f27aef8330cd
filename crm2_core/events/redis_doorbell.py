"""dramatiq's Redis broker, with consumers woken by a doorbell instead of a sleep.

dramatiq's Redis consumer polls an empty queue with a growing sleep (5 ms, doubling,
jittered, up to the worker timeout: 100 ms in ``crm2 worker``). A message enqueued
into an idle queue therefore waits for the rest of that sleep: tens of milliseconds
on average, up to the worker timeout, for every event that arrives after a pause.

Here the idle wait is a ``BLPOP`` on the queue's doorbell list (``<namespace>:<queue>.bell``)
with the same time-out, and every enqueue pushes one token to it (the list is kept
at one token). The poll rate of an idle worker is unchanged; a message wakes the
consumer at once. The doorbell only ever shortens a wait: a lost or stale token
costs at most one ordinary poll period, so delivery does not depend on it.

The wait and the fetch that follows it go out in one pipeline: Redis runs
dramatiq's ``fetch`` the moment the ``BLPOP`` returns (a token or the time-out),
as the consumer's next call would have after a round trip of its own, and the
fetched messages fill the consumer's cache for that next call.

``enqueue_batch`` sends a relay batch in one round trip: dramatiq builds each
message's enqueue call as usual, and the calls go out in one pipeline together
with the doorbell tokens (one per queue), instead of a round trip per message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed
from redis.exceptions import NoScriptError


class DoorbellRedisConsumer(_RedisConsumer):
    def __init__(self, broker: DoorbellRedisBroker, queue_name: str, prefetch: int, timeout: int):
        # dramatiq's own idle sleep is made 0 ms (compute_backoff caps it at ``timeout``);
        # the wait happens in ``__next__``, on the doorbell, with dramatiq's backoff.
        super().__init__(broker, queue_name, prefetch, 0)  # type: ignore[no-untyped-call]
        self.max_wait_ms = timeout
        self.idle_misses = 0
        self.bell = broker.bell_key(queue_name)
        # the last wait's own fetch found nothing: the next call waits again at once
        self.fetched_nothing = False

    def __next__(self) -> Any:
        if not self.fetched_nothing:  # (its cache is empty then)
            message = super().__next__()  # type: ignore[no-untyped-call]
            if message is not None:
                self.idle_misses = 0
                self.fetched_nothing = False
                return message
        self.idle_misses, wait_ms = compute_backoff(self.idle_misses, max_backoff=self.max_wait_ms)
        room = self.prefetch - self.outstanding_message_count
        try:
            if room > 0:
                self.message_cache = self.broker.wait_and_fetch(
                    self.bell, wait_ms, self.queue_name, room
                )
                self.fetched_nothing = not self.message_cache
            else:
                self.broker.client.blpop([self.bell], timeout=max(wait_ms, 1) / 1000)
                self.fetched_nothing = False
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        return None


class _Scripts(dict[str, Any]):
    """dramatiq's Lua scripts; while this thread collects a batch, ``dispatch`` calls
    are recorded (keys, args) instead of run."""

    def __init__(self, scripts: dict[str, Any]) -> None:
        super().__init__(scripts)
        self.local = threading.local()

    def __getitem__(self, name: str) -> Any:
        calls: list[tuple[list[Any], list[Any]]] | None = getattr(self.local, "calls", None)
        if name != "dispatch" or calls is None:
            return super().__getitem__(name)

        def record(args: list[Any], keys: list[Any]) -> None:
            calls.append((list(keys), list(args)))

        return record


class DoorbellRedisBroker(RedisBroker):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.scripts = self._scripts = _Scripts(self.scripts)

    @property
    def consumer_class(self) -> type[DoorbellRedisConsumer]:
        return DoorbellRedisConsumer

    def bell_key(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}.bell"

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        message = super().enqueue(message, delay=delay)
        if getattr(self._scripts.local, "calls", None) is None:
            self.ring({message.queue_name})
        return message

    def ring(self, queue_names: set[str]) -> None:
        """Wake one idle consumer of each queue (one token; extra ones are trimmed)."""
        pipe = self.client.pipeline(transaction=False)
        self._ring_into(pipe, queue_names)
        pipe.execute()

    def _ring_into(self, pipe: Any, queue_names: set[str]) -> None:
        for queue_name in sorted(queue_names):
            pipe.lpush(self.bell_key(queue_name), 1)
            pipe.ltrim(self.bell_key(queue_name), 0, 0)

    def wait_and_fetch(self, bell: str, wait_ms: int, queue_name: str, count: int) -> list[Any]:
        """``BLPOP`` on ``bell`` for up to ``wait_ms``, then dramatiq's fetch of up to
        ``count`` messages of ``queue_name``: one pipeline, so one round trip."""
        ((keys, args),) = self._recorded(lambda: self.do_fetch(queue_name, count))
        dispatch = self.scripts["dispatch"]
        pipe = self.client.pipeline(transaction=False)
        pipe.blpop([bell], timeout=max(wait_ms, 1) / 1000)
        pipe.evalsha(dispatch.sha, len(keys), *keys, *args)
        _, fetched = pipe.execute(raise_on_error=False)
        if isinstance(fetched, NoScriptError):  # the server lost its scripts (restart)
            return list(dispatch(keys=keys, args=args))
        if isinstance(fetched, Exception):
            raise fetched
        return list(fetched)

    def _recorded(self, run: Callable[[], Any]) -> list[tuple[list[Any], list[Any]]]:
        """The ``dispatch`` calls ``run`` makes, recorded instead of sent."""
        calls: list[tuple[list[Any], list[Any]]] = []
        self._scripts.local.calls = calls
        try:
            run()
        finally:
            self._scripts.local.calls = None
        return calls

    def enqueue_batch(self, messages: Sequence[Any]) -> None:
        """Enqueue ``messages`` in order, and ring each queue's doorbell once: one round trip.

        dramatiq's middleware sees each message's ``after_enqueue`` as the call is
        recorded, just before the pipeline sends it.
        """
        calls = self._recorded(lambda: [self.enqueue(message) for message in messages])
        if not calls:
            return
        dispatch = self.scripts["dispatch"]
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(dispatch.sha, len(keys), *keys, *args)
        self._ring_into(pipe, {m.queue_name for m in messages})
        results = pipe.execute(raise_on_error=False)
        for (keys, args), result in zip(calls, results, strict=False):
            if isinstance(result, NoScriptError):  # the server lost its scripts (restart)
                dispatch(keys=keys, args=args)  # redis-py loads it and runs the call
            elif isinstance(result, Exception):
                raise result
