"""A pub/sub message is a hint, the log the truth: a forged position loses no real event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
from conftest import ProbeFactory, Serve
from redis.asyncio import Redis
from sse_helpers import EventStream, event_ids, post_item

from crm2_core.streams.fanout import pubsub_channel


def forged(position: int, subject: str = "forged") -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "type": "probe.item.created",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": {"kind": "system"},
        "subject": subject,
        "data": {"n": -1},
        "position": position,
    }


async def test_a_pub_sub_message_beyond_the_log_does_not_hide_later_events(
    probe_app: ProbeFactory,
    serve: Serve,
    sse: httpx.AsyncClient,
    crm2_redis_url: tuple[str, str],
) -> None:
    redis_url, prefix = crm2_redis_url
    app = await probe_app(redis_url=redis_url, redis_prefix=prefix)
    server = await serve(app)
    headers = await app.login("admin")
    streams = app.context.streams
    await streams._subscriber.subscribed.wait()
    top = await streams.source.top()
    redis = Redis.from_url(redis_url)
    try:
        async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
            stream = EventStream(r)
            await stream.next()
            channel = pubsub_channel(prefix)
            # far beyond the log, and a run that jumps (its first position the next one)
            await redis.publish(channel, json.dumps([forged(10**12)]))
            await redis.publish(channel, json.dumps([forged(top + 1), forged(10**12 + 5)]))
            sent = [await post_item(app, headers, n) for n in range(3)]
            got = await stream.collect(lambda got: len(got) >= len(sent), within=10)
            got += await stream.drain(0.3)
    finally:
        await redis.aclose()
    assert event_ids(got) == sent
    assert streams.hub.last_position is not None and streams.hub.last_position < 10**12
