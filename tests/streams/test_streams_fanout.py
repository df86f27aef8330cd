"""Events relayed in one process reach the streams of another: Redis pub/sub, or the log poll."""

from __future__ import annotations

import asyncio
import time

import httpx
import probe_plugin
from conftest import ProbeFactory, Serve
from sqlalchemy.ext.asyncio import async_sessionmaker
from sse_helpers import EventStream, event_ids, post_item, report

from crm2_core.events import publish
from crm2_core.events.relay import relay_batch


async def test_event_committed_in_one_process_reaches_a_subscriber_of_another(
    probe_app: ProbeFactory,
    serve: Serve,
    sse: httpx.AsyncClient,
    crm2_redis_url: tuple[str, str],
) -> None:
    """Two app instances share the database and the Redis prefix.

    B relays nothing and polls the log only once a minute (relay interval 60 s),
    so within this test an event committed through A can reach B's stream only
    through Redis. A's own stream is fed through Redis too, and only once.
    """
    redis_url, prefix = crm2_redis_url
    first = await probe_app(redis_url=redis_url, redis_prefix=prefix)
    second = await probe_app(redis_url=redis_url, redis_prefix=prefix, relay_interval_seconds=60)
    servers = [await serve(first), await serve(second)]
    headers = await first.login("admin")  # the same signing key: valid on both
    total = 30
    async with (
        sse.stream("GET", f"{servers[0].url}/api/v1/streams/probe", headers=headers) as on_a,
        sse.stream("GET", f"{servers[1].url}/api/v1/streams/probe", headers=headers) as on_b,
    ):
        streams = [EventStream(on_a), EventStream(on_b)]
        for stream in streams:
            await stream.next()
        started = time.monotonic()
        sent = [await post_item(first, headers, n) for n in range(total)]
        got_a, got_b = await asyncio.gather(
            *(s.collect(lambda got: len(got) >= total, within=15) for s in streams)
        )
        elapsed = time.monotonic() - started
        got_a += await streams[0].drain(0.3)
        got_b += await streams[1].drain(0.3)
    lost_a, duplicates_a = report("redis fan-out, subscriber on A", sent, event_ids(got_a))
    lost_b, duplicates_b = report("redis fan-out, subscriber on B", sent, event_ids(got_b))
    print(f"all {total} events on both processes {elapsed:.2f}s after the first post")
    assert (lost_a, duplicates_a, lost_b, duplicates_b) == (0, 0, 0, 0)
    assert event_ids(got_a) == sent and event_ids(got_b) == sent


async def test_event_relayed_by_another_process_reaches_the_stream_through_the_log(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """Without Redis, an event a worker relays is found by the serving process's log poll."""
    app = await probe_app(relay_interval_seconds=60)  # this process neither relays nor polls
    server = await serve(app)
    headers = await app.login("admin")
    elsewhere = async_sessionmaker(app.context.engine, expire_on_commit=False)  # no relay wake-up
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        stream = EventStream(r)
        await stream.next()
        async with elsewhere() as session:
            row = publish(session, probe_plugin.ItemCreated(n=5), subject="elsewhere")
            await session.commit()

        async def broker(events: object) -> None:
            pass

        assert await relay_batch(elsewhere, broker) == 1  # the "worker's" relay
        await app.context.streams.hub.catch_up()  # its next poll tick
        message = await stream.next()
    assert message.json()["id"] == str(row.id)
