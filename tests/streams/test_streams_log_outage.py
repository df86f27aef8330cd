"""The database down while pub/sub messages keep coming: the outage is logged once when
it starts and once when the log is read again, not once per message and per poll."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from test_streams_hub import CHANNEL, FakeLog, drain, envelope

from crm2_core.events.envelope import Envelope
from crm2_core.streams.fanout import RedisSubscriber
from crm2_core.streams.hub import Hub, LogSource


class FlakyLog(FakeLog):
    """The committed log behind a database that can be down."""

    def __init__(self, top: int = 0) -> None:
        super().__init__(top)
        self.down = False

    def source(self) -> LogSource:
        inner = super().source()

        async def top() -> int:
            if self.down:
                raise ConnectionRefusedError("the database is down")
            return await inner.top()

        async def read(after: int, limit: int, types: object = None) -> list[Envelope]:
            if self.down:
                raise ConnectionRefusedError("the database is down")
            return await inner.read(after, limit, types)

        return LogSource(top=top, read=read)


def message(position: int) -> str:
    return json.dumps([envelope(position).model_dump(mode="json")])


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("crm2_core.streams") and r.levelno >= logging.WARNING
    ]


async def test_a_database_outage_is_logged_once_at_its_start_and_once_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="crm2_core.streams")
    log = FlakyLog(top=3)
    hub = Hub(log.source(), poll_seconds=0.01)
    await hub.start()
    try:
        subscriber = RedisSubscriber(None, "test:", hub)
        subscription, _ = hub.subscribe(CHANNEL, limit=100)
        log.down = True
        log.events += [envelope(p) for p in range(4, 15)]
        for position in range(4, 14):
            await subscriber._deliver(message(position))
        await asyncio.sleep(0.1)  # the log poll fails too, several times
        during = logged(caplog)
        assert len(during) == 1, [r.getMessage() for r in during]
        assert "cannot read the event log" in during[0].getMessage()
        assert during[0].exc_info is not None  # the cause, once
        log.down = False
        await subscriber._deliver(message(14))
        await asyncio.sleep(0.05)
        assert await drain(subscription) == list(range(4, 15))
    finally:
        await hub.close()
    after = logged(caplog)
    assert len(after) == 2, [r.getMessage() for r in after]
    assert "can be read again" in after[1].getMessage()
