"""A handler registered by a plugin runs for an event committed through the API,
on RabbitMQ and on Redis, in a separate `crm2 worker` process."""

from __future__ import annotations

import uuid

import probe_plugin
import pytest
from brokers import broker_url, cleanup, unique_prefix, worker_process
from helpers import effects, wait_for

from crm2_core.testing import TestDatabase


@pytest.mark.parametrize("kind", ["amqp", "redis"])
async def test_handler_runs_in_worker_for_committed_event(
    kind: str, crm2_app_factory, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=broker_url(kind), broker_queue_prefix=prefix
        )
        headers = await app.login("agent")
        async with worker_process(crm2_database.url, kind, prefix):
            ids = []
            for n in range(5):
                response = await app.client.post(
                    "/api/v1/probe/items", json={"n": n}, headers=headers
                )
                assert response.status_code == 201
                ids.append(uuid.UUID(response.json()["event_id"]))

            async def all_handled() -> bool:
                return await effects(app) == 5

            await wait_for(all_handled, within=30)
        for event_id in ids:
            assert await effects(app, event_id) == 1
    finally:
        cleanup(kind, prefix)


def _doorbell_broker(prefix: str):  # type: ignore[no-untyped-def]
    from crm2_core.events.dramatiq_broker import make_dramatiq_broker

    broker = make_dramatiq_broker(broker_url("redis"), prefix)
    broker.declare_queue(f"{prefix}.probe")
    return broker


def test_redis_consumer_idle_wait_ends_when_a_message_is_enqueued() -> None:
    """dramatiq's idle Redis consumer sleeps up to the worker timeout between polls; the
    doorbell ends that wait as soon as something is enqueued."""
    import threading
    import time

    import dramatiq

    prefix = unique_prefix()
    broker = _doorbell_broker(prefix)
    queue = f"{prefix}.probe"
    consumer = broker.consume(queue, prefetch=1, timeout=5000)  # polls up to 5 s apart
    got: list[float] = []

    def consume() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = next(consumer)
            if message is not None:
                got.append(time.monotonic())
                consumer.ack(message)
                return

    thread = threading.Thread(target=consume)
    try:
        thread.start()
        time.sleep(2.5)  # idle long enough for the poll period to reach seconds
        sent = time.monotonic()
        broker.enqueue(dramatiq.Message(queue, "probe", (), {}, {}))
        thread.join(10)
        assert got, "the message never arrived"
        assert got[0] - sent < 0.5, f"woke after {got[0] - sent:.3f} s"
    finally:
        thread.join(10)
        consumer.close()
        broker.close()
        cleanup("redis", prefix)


def test_a_woken_redis_consumer_has_its_message_from_the_round_trip_that_waited() -> None:
    """The doorbell's wait and dramatiq's fetch go out in one pipeline: the call that was
    woken returns with the message fetched into the consumer's cache, and the next call
    hands it over without asking Redis again."""
    import threading
    import time

    import dramatiq

    prefix = unique_prefix()
    broker = _doorbell_broker(prefix)
    queue = f"{prefix}.probe"
    consumer = broker.consume(queue, prefetch=1, timeout=5000)
    sent = dramatiq.Message(queue, "probe", (), {}, {})
    ringer = threading.Timer(1.0, broker.enqueue, (sent,))  # the consumer waits by then
    try:
        ringer.start()
        deadline = time.monotonic() + 10
        while not consumer.message_cache:
            assert next(consumer) is None, "fetched by a round trip after the wait"
            assert time.monotonic() < deadline, "the message never arrived"

        def no_fetch(*_args: object) -> None:
            raise AssertionError("fetched again")

        broker.do_fetch = no_fetch
        message = next(consumer)
        assert message is not None and message.message_id == sent.message_id
        consumer.ack(message)
    finally:
        ringer.cancel()
        consumer.close()
        broker.close()
        cleanup("redis", prefix)


def test_redis_doorbell_rings_once_per_batch_and_keeps_one_token() -> None:
    import dramatiq

    prefix = unique_prefix()
    broker = _doorbell_broker(prefix)
    queue = f"{prefix}.probe"
    bell = broker.bell_key(queue)
    rings: list[set[str]] = []
    ring = broker.ring
    broker.ring = lambda queues: (rings.append(set(queues)), ring(queues))  # type: ignore[method-assign]
    try:
        broker.enqueue_batch([dramatiq.Message(queue, "probe", (), {}, {}) for _ in range(5)])
        assert rings == []  # the batch's token went out with its pipeline
        assert broker.client.llen(bell) == 1
        for _ in range(3):
            broker.enqueue(dramatiq.Message(queue, "probe", (), {}, {}))
        assert len(rings) == 3
        assert broker.client.llen(bell) == 1
    finally:
        broker.close()
        cleanup("redis", prefix)
