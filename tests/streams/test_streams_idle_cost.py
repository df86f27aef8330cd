"""What an open stream keeps alive: one task beside the server's, no more (bench scenario 6).

An idle stream used to run sse-starlette's four-task group (data, heartbeat,
shutdown watcher, disconnect listener) plus a shutdown watcher of its own and a
``wait_for`` task: about 55 KB of RSS per idle connection. Now the stream's own
task sends, heartbeats come from the connection's wait timeout, shutdown is one
watcher per process, and one small task waits for the client's disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import httpx
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, post_item

from crm2_core.streams.hub import Subscription
from crm2_core.streams.messages import EncodedMessages

STREAMS = 5


async def _settle(condition, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_an_idle_stream_costs_two_tasks_and_a_gone_client_is_unsubscribed(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    hub = app.context.streams.hub
    url = f"{server.url}/api/v1/streams/probe"
    before = len(asyncio.all_tasks())
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for _ in range(STREAMS):
            response = await stack.enter_async_context(sse.stream("GET", url, headers=headers))
            stream = EventStream(response)
            assert (await stream.next()).event == "connected"
            streams.append(stream)
        # per stream: uvicorn's request task and the disconnect listener (the test's
        # client adds its own reader tasks on top, if any: allow one more)
        assert len(asyncio.all_tasks()) - before <= STREAMS * 3
        assert hub.subscriptions == STREAMS
        await post_item(app, headers, 1)
        for stream in streams:
            assert (await stream.next()).json()["data"] == {"n": 1}
    # every client closed: each stream notices at once, not at its next heartbeat
    await _settle(lambda: hub.subscriptions == 0)


async def test_a_fresh_stream_reads_no_events_from_the_log(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    """A stream without ``Last-Event-ID`` starts at the log's top: it has nothing to
    replay, so opening it costs one query (the top), not a second one for an empty page
    (bench scenario 5 counted that page in every subscriber's first delivery)."""
    app = await probe_app()
    server = await serve(app)
    headers = await app.login("admin")
    streams_service = app.context.streams
    reads: list[int] = []
    source = streams_service.source

    async def counted(after: int, limit: int, types: Any = None) -> Any:
        reads.append(after)
        return await source.read(after, limit, types)

    streams_service.source = dataclasses.replace(source, read=counted)
    await post_item(app, headers, 1)  # the log is not empty
    # and item 1 holds its position in it before any stream opens: a stream opened
    # before the relay got to it would start below it and receive it live
    await app.settle_events()
    url = f"{server.url}/api/v1/streams/probe"
    async with contextlib.AsyncExitStack() as stack:
        fresh = []
        for _ in range(3):
            response = await stack.enter_async_context(sse.stream("GET", url, headers=headers))
            stream = EventStream(response)
            assert (await stream.next()).event == "connected"
            fresh.append(stream)
        await post_item(app, headers, 2)
        for stream in fresh:
            assert (await stream.next()).json()["data"] == {"n": 2}
        assert reads == []
        # a resuming stream still replays the log
        resumed = await stack.enter_async_context(
            sse.stream("GET", url, headers={**headers, "Last-Event-ID": "0"})
        )
        stream = EventStream(resumed)
        assert (await stream.next()).event == "connected"
        assert [(await stream.next()).json()["data"]["n"] for _ in range(2)] == [1, 2]
        assert reads and reads[0] == 0


async def test_an_event_is_encoded_once_for_every_connection() -> None:
    class Envelope:  # the encoder only reads these fields
        type, position = "probe.item.created", 7

        def model_dump_json(self, **_: object) -> str:
            return '{"n": 1}'

    messages = EncodedMessages()
    first = messages(Envelope())  # type: ignore[arg-type]
    assert first == b'id: 7\r\nevent: probe.item.created\r\ndata: {"n": 1}\r\n\r\n'
    # the same position from the log (another object) is the same message, encoded once
    assert messages(Envelope()) is first  # type: ignore[arg-type]


async def test_two_applications_keep_their_encoded_messages_apart() -> None:
    class Envelope:
        type, position = "probe.item.created", 7

        def __init__(self, n: int) -> None:
            self.n = n

        def model_dump_json(self, **_: object) -> str:
            return f'{{"n": {self.n}}}'

    one, other = EncodedMessages(), EncodedMessages()

    assert b'{"n": 1}' in one(Envelope(1))  # type: ignore[arg-type]
    # position 7 of another application's log is another event
    assert b'{"n": 2}' in other(Envelope(2))  # type: ignore[arg-type]


async def test_an_idle_subscription_holds_no_buffer_and_wakes_on_offer() -> None:
    from crm2_hookspecs import SseChannel

    subscription = Subscription(SseChannel("probe", ("probe.*",), "probe:read", None), 10)
    assert subscription._items is None
    waiting = asyncio.create_task(subscription.next(wait_seconds=5))
    await asyncio.sleep(0)
    subscription.offer(["x"])  # type: ignore[list-item]
    assert await asyncio.wait_for(waiting, 1) == "x"
    assert await subscription.next(wait_seconds=0.01) is None  # times out empty
