"""A database restored to an earlier point: the log ends before what the hub dispatched.

The hub notices on its log poll and resets every stream to the log's end (``event:
reset``); events committed from then on reach the streams again, with their own content
(not the encoding of the event that held their position before)."""

from __future__ import annotations

import httpx
from conftest import ProbeFactory, Serve
from sqlalchemy import delete
from sse_helpers import EventStream, event_ids, post_item, wait_for

from crm2_core.events.models import EventRecord


async def test_a_log_gone_back_resets_the_streams_and_later_events_flow(
    probe_app: ProbeFactory, serve: Serve, sse: httpx.AsyncClient
) -> None:
    app = await probe_app(relay_interval_seconds=0.1)
    server = await serve(app)
    headers = await app.login("admin")
    streams = app.context.streams
    async with sse.stream("GET", f"{server.url}/api/v1/streams/probe", headers=headers) as r:
        stream = EventStream(r)
        await stream.connected()
        restored_top = await streams.source.top()
        lost = [await post_item(app, headers, n) for n in range(3)]
        got = await stream.collect(lambda got: len(got) >= 3, within=10)
        assert event_ids(got) == lost
        # the restore: the log loses its last three events
        async with app.context.session_factory() as session:
            await session.execute(
                delete(EventRecord).where(EventRecord.position > restored_top)  # type: ignore[arg-type]
            )
            await session.commit()
        reset = await stream.next_event(within=10)
        assert reset.event == "reset"
        assert reset.id == str(restored_top)
        assert reset.json() == {"reason": "log-rewound", "position": restored_top}
        new = [await post_item(app, headers, 100 + n) for n in range(2)]

        async def relayed() -> bool:
            return await streams.source.top() >= restored_top + 2

        await wait_for(relayed)
        got = await stream.collect(lambda got: len(got) >= 2, within=10)
    assert event_ids(got) == new
    assert [m.id for m in got] == [str(restored_top + 1), str(restored_top + 2)]
    assert [m.json()["data"]["n"] for m in got] == [100, 101]
