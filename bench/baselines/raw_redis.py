"""Scenario 4b's baseline: a raw redis-py push → blocking pop round trip.

Two processes, like crm2 serve (publisher) and crm2 worker (consumer):

    raw_redis.py consume --redis-url R --queue Q --results-key K
    raw_redis.py publish --redis-url R --queue Q --gaps-ms 40,35,...

``publish`` sleeps each gap, stamps ``time.time()`` and ``RPUSH``es the message id,
printing ``[[id, sent_at], ...]`` as JSON. ``consume`` waits in ``BLPOP`` (the
natural way to wait on a Redis list: no polling), stamps the time on each message
and pushes ``"<id> <at>"`` to the list ``K`` (first ``"ready"``).
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import uuid

import redis


def consume(args: argparse.Namespace) -> None:
    client = redis.Redis.from_url(args.redis_url)
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    client.rpush(args.results_key, "ready")
    deadline = time.monotonic() + args.max_seconds
    while not stopping and time.monotonic() < deadline:
        got = client.blpop([args.queue], timeout=0.5)
        if got is None:
            continue
        at = time.time()
        client.rpush(args.results_key, f"{got[1].decode()} {at!r}")
    client.close()


def publish(args: argparse.Namespace) -> None:
    client = redis.Redis.from_url(args.redis_url)
    client.ping()  # connect before the first gap, as a running publisher would be
    sent: list[tuple[str, float]] = []
    for gap_ms in (float(g) for g in args.gaps_ms.split(",")):
        time.sleep(gap_ms / 1000)
        message_id = str(uuid.uuid4())
        at = time.time()
        client.rpush(args.queue, message_id)
        sent.append((message_id, at))
    client.close()
    print(json.dumps(sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["consume", "publish"])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--gaps-ms", default="0", help="publish: sleep before each message")
    parser.add_argument("--results-key", default="")
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    (consume if args.role == "consume" else publish)(args)


if __name__ == "__main__":
    main()
