"""Scenario 4's baseline: a raw pika publish-with-confirm → consume round trip.

Two processes, like crm2 serve (publisher) and crm2 worker (consumer):

    raw_pika.py consume --url AMQP --queue Q --results-key K --redis-url R
    raw_pika.py publish --url AMQP --queue Q --gaps-ms 40,35,...

The queue is durable and messages persistent (delivery_mode=2), with publisher
confirms on, as dramatiq's RabbitMQ broker sends them for crm2. ``publish`` sleeps
each gap, stamps ``time.time()`` and publishes (waiting for the confirm), and prints
``[[id, sent_at], ...]`` as JSON. ``consume`` acks each message, then stamps the
time and pushes ``"<id> <at>"`` to the Redis list ``K`` (first ``"ready"`` once it
consumes). Latency = consumer's stamp - publisher's stamp.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import uuid
from typing import Any

import pika
import redis


def consume(args: argparse.Namespace) -> None:
    results = redis.Redis.from_url(args.redis_url)
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.queue_declare(queue=args.queue, durable=True)
    channel.basic_qos(prefetch_count=args.prefetch)

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        ch.basic_ack(delivery_tag=method.delivery_tag)
        at = time.time()
        results.rpush(args.results_key, f"{body.decode()} {at!r}")

    channel.basic_consume(queue=args.queue, on_message_callback=on_message)
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    results.rpush(args.results_key, "ready")
    deadline = time.monotonic() + args.max_seconds
    while not stopping and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)
    connection.close()


def publish(args: argparse.Namespace) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue=args.queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=2)
    sent: list[tuple[str, float]] = []
    for gap_ms in (float(g) for g in args.gaps_ms.split(",")):
        time.sleep(gap_ms / 1000)
        message_id = str(uuid.uuid4())
        at = time.time()
        channel.basic_publish("", args.queue, message_id.encode(), properties, mandatory=True)
        sent.append((message_id, at))
    connection.close()
    print(json.dumps(sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["consume", "publish"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--gaps-ms", default="0", help="publish: sleep before each message")
    parser.add_argument("--results-key", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefetch", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    (consume if args.role == "consume" else publish)(args)


if __name__ == "__main__":
    main()
