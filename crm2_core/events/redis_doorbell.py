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
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed


class DoorbellRedisConsumer(_RedisConsumer):
    def __init__(self, broker: DoorbellRedisBroker, queue_name: str, prefetch: int, timeout: int):
        # dramatiq's own idle sleep is made 0 ms (compute_backoff caps it at ``timeout``);
        # the wait happens in ``__next__``, on the doorbell, with dramatiq's backoff.
        super().__init__(broker, queue_name, prefetch, 0)  # type: ignore[no-untyped-call]
        self.max_wait_ms = timeout
        self.idle_misses = 0
        self.bell = broker.bell_key(queue_name)

    def __next__(self) -> Any:
        message = super().__next__()  # type: ignore[no-untyped-call]
        if message is not None:
            self.idle_misses = 0
            return message
        self.idle_misses, wait_ms = compute_backoff(self.idle_misses, max_backoff=self.max_wait_ms)
        try:
            self.broker.client.blpop([self.bell], timeout=max(wait_ms, 1) / 1000)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        return None


class DoorbellRedisBroker(RedisBroker):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._batch = threading.local()

    @property
    def consumer_class(self) -> type[DoorbellRedisConsumer]:
        return DoorbellRedisConsumer

    def bell_key(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}.bell"

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        message = super().enqueue(message, delay=delay)
        pending: set[str] | None = getattr(self._batch, "queues", None)
        if pending is None:
            self.ring({message.queue_name})
        else:
            pending.add(message.queue_name)
        return message

    def ring(self, queue_names: set[str]) -> None:
        """Wake one idle consumer of each queue (one token; extra ones are trimmed)."""
        pipe = self.client.pipeline(transaction=False)
        for queue_name in queue_names:
            pipe.lpush(self.bell_key(queue_name), 1)
            pipe.ltrim(self.bell_key(queue_name), 0, 0)
        pipe.execute()

    @contextmanager
    def ring_once(self) -> Iterator[None]:
        """Enqueues in this block (this thread) ring each queue's doorbell once, at the end."""
        pending: set[str] = set()
        self._batch.queues = pending
        try:
            yield
        finally:
            self._batch.queues = None
            if pending:
                self.ring(pending)
