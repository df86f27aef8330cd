"""A resume from too far back is not replayed: a ``reset`` event, then live events."""

from __future__ import annotations

import httpx
from conftest import ProbeFactory, Serve
from sse_helpers import EventStream, event_ids, post_item, wait_for

from crm2_core.testing import Crm2TestApp


async def relayed(app: Crm2TestApp, position: int) -> None:
    """Wait for the relay to have given the log ``position``."""

    async def done() -> bool:
        return await app.context.streams.source.top() >= position

    await wait_for(done)


async def test_a_resume_beyond_the_replay_limit_gets_a_reset_then_live_events(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_max_replay_events=3)
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    start = await app.context.streams.source.top()
    for n in range(5):
        await post_item(app, headers, n)
    await relayed(app, start + 5)
    top = await app.context.streams.source.top()
    async with sse.stream("GET", url, headers={**headers, "Last-Event-ID": str(start)}) as r:
        stream = EventStream(r)
        assert (await stream.next()).event == "connected"
        reset = await stream.next()
        assert reset.event == "reset"
        assert reset.id == str(top)
        assert reset.json() == {"reason": "replay-too-long", "position": top, "behind": top - start}
        live = await post_item(app, headers, 99)
        got = await stream.collect(lambda got: len(got) >= 1)
    assert event_ids(got) == [live]  # none of the five before it


async def test_a_resume_within_the_replay_limit_is_replayed(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(sse_max_replay_events=5)
    server = await serve(app)
    headers = await app.login("admin")
    url = f"{server.url}/api/v1/streams/probe"
    start = await app.context.streams.source.top()
    sent = [await post_item(app, headers, n) for n in range(5)]
    await relayed(app, start + 5)
    assert await app.context.streams.source.top() - start == 5
    async with sse.stream("GET", url, headers={**headers, "Last-Event-ID": str(start)}) as r:
        stream = EventStream(r)
        await stream.next()
        got = await stream.collect(lambda got: len(got) >= len(sent))
    assert event_ids(got) == sent
