"""A relay batch reaches RabbitMQ and Redis in one round trip, in order, and survives
the broker's usual mishaps (a deleted queue, a dropped connection, lost scripts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
from brokers import RABBITMQ_URL, broker_url, cleanup, unique_prefix

from crm2_core.events.dramatiq_broker import make_dramatiq_broker


@pytest.fixture
def prefix() -> Iterator[str]:
    name = unique_prefix()
    yield name
    cleanup("amqp", name, plugins=("a", "b"))
    cleanup("redis", name)


def _batch(prefix: str, count: int) -> list[dramatiq.Message[Any]]:
    """``count`` messages, alternating between the queues ``<prefix>.a`` and ``<prefix>.b``."""
    return [
        dramatiq.Message(f"{prefix}.{'ab'[n % 2]}", "probe", (n,), {}, {}) for n in range(count)
    ]


def _rabbitmq_bodies(queue: str) -> list[int]:
    """The ``n`` of each message waiting in ``queue``, in queue order (taken off it)."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel, got = connection.channel(), []
        while True:
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append(dramatiq.Message.decode(body).args[0])
    finally:
        connection.close()


def test_rabbitmq_batch_is_one_transaction_in_order(prefix: str) -> None:
    broker = make_dramatiq_broker(broker_url("amqp"), prefix)
    commits: list[int] = []
    try:
        broker.enqueue_batch(_batch(prefix, 2))  # declares the queues, opens the channel
        channel = broker._tx_channel
        tx_commit = channel.tx_commit
        channel.tx_commit = lambda: (commits.append(1), tx_commit())[1]
        broker.enqueue_batch(_batch(prefix, 10))
        assert commits == [1]  # ten messages, one wait for the broker
        assert _rabbitmq_bodies(f"{prefix}.a") == [0, 0, 2, 4, 6, 8]
        assert _rabbitmq_bodies(f"{prefix}.b") == [1, 1, 3, 5, 7, 9]
    finally:
        broker.close()


def test_rabbitmq_batch_declares_a_deleted_queue_again(prefix: str) -> None:
    broker = make_dramatiq_broker(broker_url("amqp"), prefix)
    try:
        broker.enqueue_batch(_batch(prefix, 2))
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        connection.channel().queue_delete(f"{prefix}.b")  # dramatiq still thinks it exists
        connection.close()
        broker.enqueue_batch(_batch(prefix, 4))
        assert _rabbitmq_bodies(f"{prefix}.a") == [0, 0, 2]
        assert _rabbitmq_bodies(f"{prefix}.b") == [1, 3]  # returned, declared, sent again
    finally:
        broker.close()


def test_rabbitmq_batch_reconnects_after_the_connection_drops(prefix: str) -> None:
    broker = make_dramatiq_broker(broker_url("amqp"), prefix)
    try:
        broker.enqueue_batch(_batch(prefix, 2))
        broker.connection.close()  # as a broker restart would leave it
        broker.enqueue_batch(_batch(prefix, 2))
        assert _rabbitmq_bodies(f"{prefix}.a") == [0, 0]
        assert _rabbitmq_bodies(f"{prefix}.b") == [1, 1]
    finally:
        broker.close()


def _redis_consume(broker: Any, queue: str) -> list[int]:
    consumer = broker.consume(queue, prefetch=100, timeout=100)
    try:
        got = []
        while (message := next(consumer)) is not None:
            got.append(message.args[0])
            consumer.ack(message)
        return got
    finally:
        consumer.close()


def test_redis_batch_is_one_round_trip_in_order(prefix: str) -> None:
    broker = make_dramatiq_broker(broker_url("redis"), prefix)
    broker.enqueue_batch(_batch(prefix, 2))  # dramatiq asks the server's Lua limits once
    client = broker.client
    sent: list[str] = []
    execute_command, pipeline = client.execute_command, client.pipeline

    def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: (sent.append("pipeline"), execute(*a, **k))[1]
        return pipe

    client.execute_command = lambda *a, **k: (sent.append(a[0]), execute_command(*a, **k))[1]
    client.pipeline = counted_pipeline
    try:
        broker.enqueue_batch(_batch(prefix, 10))
        assert sent == ["pipeline"]  # ten messages and two doorbells
        client.execute_command, client.pipeline = execute_command, pipeline
        assert client.llen(broker.bell_key(f"{prefix}.a")) == 1
        assert _redis_consume(broker, f"{prefix}.a") == [0, 0, 2, 4, 6, 8]
        assert _redis_consume(broker, f"{prefix}.b") == [1, 1, 3, 5, 7, 9]
    finally:
        broker.close()


def test_redis_batch_reloads_a_script_the_server_lost(prefix: str) -> None:
    broker = make_dramatiq_broker(broker_url("redis"), prefix)
    try:
        broker.scripts["dispatch"].sha = "0" * 40  # as after a server restart: NOSCRIPT
        broker.enqueue_batch(_batch(prefix, 4))
        assert _redis_consume(broker, f"{prefix}.a") == [0, 2]
        assert _redis_consume(broker, f"{prefix}.b") == [1, 3]
    finally:
        broker.close()
