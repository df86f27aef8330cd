"""Resume with Last-Event-ID while events keep coming; a slow consumer is cut off alone."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import probe_plugin
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, Message, event_ids, post_item, report, wait_for


def _positions(received: list[Message]) -> list[int]:
    return [int(m.id or 0) for m in received]


async def test_resume_while_events_keep_coming_delivers_each_event_once_in_order(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    total = 90
    sent: list[uuid.UUID] = []
    received: list[Message] = []

    async def produce() -> None:
        for n in range(total):
            sent.append(await post_item(app, headers, n))
            await asyncio.sleep(0.01)

    def complete(got: list[Message]) -> bool:
        return len(received) + len(got) >= total

    async with sse.stream("GET", url, headers=headers) as response:
        stream = EventStream(response)
        await stream.next()  # connected: subscribed before the first event
        producer = asyncio.create_task(produce())
        received += await stream.collect(lambda got: len(got) >= 25)
    gaps = [len(sent)]
    await asyncio.sleep(0.3)  # disconnected while events keep coming

    resume = {**headers, "Last-Event-ID": str(received[-1].id)}
    async with sse.stream("GET", url, headers=resume) as response:  # EventSource's reconnect
        stream = EventStream(response)
        assert (await stream.next()).id == received[-1].id
        gaps[-1] = len(sent) - gaps[-1]
        received += await stream.collect(lambda got: len(got) >= 25)
    gaps.append(len(sent))
    await asyncio.sleep(0.3)

    query = {"last_event_id": str(received[-1].id)}  # a new EventSource, resuming by URL
    async with sse.stream("GET", url, headers=headers, params=query) as response:
        stream = EventStream(response)
        await stream.next()
        gaps[-1] = len(sent) - gaps[-1]
        received += await stream.collect(complete, within=30)
        received += await stream.drain(0.5)
    await producer

    lost, duplicates = report("sse resume", sent, event_ids(received))
    print(f"events committed while disconnected (replayed from the log): {gaps}")
    assert lost == 0 and duplicates == 0
    assert event_ids(received) == sent  # in commit order, which is the order they were posted
    positions = _positions(received)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


async def test_slow_consumer_is_cut_off_without_slowing_the_others(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """The manager's stream spends 0.2 s per event in can_see: it cannot keep up."""
    app = await probe_app(sse_queue_size=25)
    probe_plugin.SEE_DELAY["manager"] = 0.2
    server = await serve(app)
    admin = await app.login("admin")
    manager = await app.login("manager")
    url = f"{server.url}/api/v1/streams/probe"
    total = 60
    async with (
        sse.stream("GET", url, headers=admin) as fast_response,
        sse.stream("GET", url, headers=manager) as slow_response,
    ):
        fast, slow = EventStream(fast_response), EventStream(slow_response)
        await fast.next()
        await slow.next()
        started = time.monotonic()
        sent = [await post_item(app, admin, n) for n in range(total)]
        posted = time.monotonic() - started
        fast_got, slow_got = await asyncio.gather(
            fast.collect(lambda got: len(got) == total, within=40),
            slow.collect(lambda got: got[-1].event == "reconnect", within=40),
        )
        fast_done = time.monotonic() - started
        assert await slow.drain(0.5) == []  # the slow stream has ended
    lost, duplicates = report("fast client beside a slow one", sent, event_ids(fast_got))
    print(
        f"posting took {posted:.2f}s, fast client complete after {fast_done:.2f}s, "
        f"slow client got {len(slow_got) - 1} events before it was cut"
    )
    assert lost == 0 and duplicates == 0
    assert event_ids(fast_got) == sent
    farewell = slow_got[-1]
    assert farewell.json() == {"reason": "slow-consumer"} and farewell.retry == 3000
    assert len(slow_got) - 1 < total


async def test_resume_from_the_opening_position_replays_what_came_after(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """A client that got no event yet still resumes exactly, from the `connected` id."""
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    before = await post_item(app, headers, 1)
    source = app.context.streams.source

    async def relayed() -> bool:  # it has its position in the log
        return await source.top() >= 1

    await wait_for(relayed)
    async with sse.stream("GET", url, headers=headers) as response:
        opening = await EventStream(response).next()
    assert opening.event == "connected"
    missed = [await post_item(app, headers, n) for n in (2, 3)]
    resume = {**headers, "Last-Event-ID": str(opening.id)}
    async with sse.stream("GET", url, headers=resume) as response:
        stream = EventStream(response)
        await stream.next()
        received = await stream.collect(lambda got: len(got) == 2)
        received += await stream.drain(0.3)
    assert event_ids(received) == missed and before not in event_ids(received)
