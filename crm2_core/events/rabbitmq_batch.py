"""dramatiq's RabbitMQ broker, publishing a batch in one round trip (an AMQP transaction).

dramatiq publishes with publisher confirms one message at a time: pika's blocking
``basic_publish`` waits for each message's confirm, and RabbitMQ confirms a persistent
message once it is on disk. A relay batch of N messages (one per handler of each
event) therefore waited N times for the broker's disk, in a row, before the relay
could commit.

Here a batch goes out on a channel in transaction mode (``tx.select``): every message
is published, then one ``tx.commit``, which RabbitMQ answers once the whole batch is
routed and persisted: the guarantee of confirms (a message we were told is sent
survives a broker restart), one wait per batch. A message no queue took (``mandatory``;
its queue was deleted) comes back as ``basic.return`` ahead of the commit's answer: its
queue is declared again and the messages of that queue are published again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.errors import ConnectionClosed
from pika.adapters.blocking_connection import BlockingChannel

MAX_ATTEMPTS = 6  # as dramatiq's own enqueue


class Unroutable(Exception):
    """Some messages of a batch came back: their queues did not exist."""

    def __init__(self, queues: set[str]) -> None:
        super().__init__(f"no queue took the messages for {', '.join(sorted(queues))}")
        self.queues = queues


class BatchingRabbitmqBroker(RabbitmqBroker):
    """``enqueue_batch``: many messages, one transaction; ``enqueue`` is dramatiq's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tx_channel: BlockingChannel | None = None  # of the one thread that batches
        self._returned: set[str] = set()

    def enqueue_batch(self, messages: Sequence[dramatiq.Message[Any]]) -> None:
        """Publish ``messages`` (in order) and return once RabbitMQ holds all of them.

        Call it from one thread only (pika is not thread-safe); crm2's sender thread is
        the only caller. Raises ``ConnectionClosed`` when the broker stays unreachable.
        """
        pending = list(messages)
        attempts = 0
        while pending:
            try:
                self._publish(pending)
                return
            except Unroutable as exc:
                self.queues_pending.update(exc.queues)  # declared again on the next attempt
                pending = [m for m in pending if m.queue_name in exc.queues]
                error: Exception = exc
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                self._forget_channel()
                del self.connection  # this thread's: a fresh one on the next attempt
                error = exc
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                raise ConnectionClosed(error) from None  # type: ignore[no-untyped-call]

    def _publish(self, messages: Sequence[dramatiq.Message[Any]]) -> None:
        for queue_name in dict.fromkeys(m.queue_name for m in messages):
            self.declare_queue(queue_name, ensure=True)
        channel = self._channel()
        self._returned.clear()
        for message in messages:
            self.emit_before("enqueue", message, None)
            channel.basic_publish(
                exchange="",
                routing_key=message.queue_name,
                body=message.encode(),
                properties=pika.BasicProperties(
                    delivery_mode=2, priority=message.options.get("broker_priority")
                ),
                mandatory=True,
            )
        channel.tx_commit()
        # a basic.return arrives before tx.commit-ok; this runs its callback
        channel.connection.process_data_events(time_limit=0)
        if self._returned:
            raise Unroutable(set(self._returned))
        for message in messages:
            self.emit_after("enqueue", message, None)

    def _channel(self) -> BlockingChannel:
        channel = self._tx_channel
        if channel is None or not channel.is_open or channel.connection is not self.connection:
            channel = self.connection.channel()
            channel.tx_select()
            channel.add_on_return_callback(self._on_return)
            self._tx_channel = channel
        return channel

    def _on_return(self, _channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        self._returned.add(method.routing_key)

    def _forget_channel(self) -> None:
        channel, self._tx_channel = self._tx_channel, None
        if channel is not None and channel.is_open:
            try:
                channel.close()
            except Exception:  # the connection is going anyway
                self.logger.debug("could not close the batch channel", exc_info=True)
