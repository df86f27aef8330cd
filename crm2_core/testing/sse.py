"""Live Server-Sent Events in tests: the test app on a real socket and a small SSE reader.

httpx's in-process ASGI transport collects a whole response before returning
it, so an endless SSE stream needs a socket: :func:`serving` runs the test app
under uvicorn on 127.0.0.1 (a free port) inside the test's event loop, and
:func:`open_stream` opens a channel as a signed-in user::

    from crm2_core.testing.sse import open_stream

    async with open_stream(app, "payments", agent.headers) as stream:
        ...  # make something happen
        message = await stream.next_event()
        assert message.event == "payments.payment.created"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from crm2_core.context import SERVER_STOPPING
from crm2_core.http.server import bind_server
from crm2_core.testing.app import Crm2TestApp
from crm2_core.testing.servers import LocalServer, start_local_server

__all__ = ["EventStream", "Message", "RunningServer", "open_stream", "serving", "start_server"]


# The kit's SSE server is a LocalServer (``crm2_core.testing.servers``); the old name stays.
RunningServer = LocalServer


async def start_server(app: Crm2TestApp) -> RunningServer:
    """Serve ``app`` (already started by the testing kit: lifespan off) on a free port."""

    def bind(server: uvicorn.Server) -> None:
        if not app.context.has(SERVER_STOPPING):  # a second server on one app: the first tells
            bind_server(app.app, server)

    return await start_local_server(app.app, prepare=bind)


@contextlib.asynccontextmanager
async def serving(app: Crm2TestApp) -> AsyncIterator[str]:
    """The app on a real socket for the block; yields its base URL."""
    running = await start_server(app)
    try:
        yield running.url
    finally:
        await running.stop()


@dataclass
class Message:
    """One SSE block: comment lines and fields, as a browser's parser would see them."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Yield each blank-line-terminated block of an SSE response."""
    current = Message()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            current.data = "\n".join(data) if data else None
            yield current
            current, data = Message(), []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            data.append(value)
        elif name == "retry":
            current.retry = int(value)


class EventStream:
    """One open SSE response, read message by message (an httpx body can be iterated once)."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.status_code
        self.response = response
        self._messages = messages(response)

    async def next(self, within: float = 10.0) -> Message:
        """The next block, comments and keep-alives included."""
        return await asyncio.wait_for(anext(self._messages), within)

    async def connected(self, within: float = 10.0) -> None:
        """Wait for the ``connected`` greeting: from then on, events reach this subscriber."""
        while (await self.next(within)).event != "connected":
            pass

    async def next_event(self, within: float = 10.0) -> Message:
        """The next message carrying data that is not the ``connected`` greeting."""

        async def read() -> Message:
            async for message in self._messages:
                if message.data is not None and message.event != "connected":
                    return message
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), within)

    async def collect(self, until: Any, within: float = 15.0) -> list[Message]:
        """Data messages until ``until(received)`` is true or the stream ends."""
        received: list[Message] = []

        async def read() -> None:
            async for message in self._messages:
                if message.data is not None:
                    received.append(message)
                    if until(received):
                        return

        await asyncio.wait_for(read(), within)
        return received

    async def drain(self, seconds: float) -> list[Message]:
        """Data messages that arrive within ``seconds`` (stragglers, duplicates)."""
        received: list[Message] = []

        async def read() -> None:
            async for message in self._messages:
                if message.data is not None:
                    received.append(message)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), seconds)
        return received


@contextlib.asynccontextmanager
async def open_stream(
    app: Crm2TestApp, channel: str, headers: Mapping[str, str], *, within: float = 10.0
) -> AsyncIterator[EventStream]:
    """Channel ``channel`` opened with ``headers`` (a signed-in user's), once it is live.

    Yields after the ``connected`` greeting, so whatever the test does next is
    delivered to this subscriber.
    """
    async with serving(app) as base, httpx.AsyncClient(timeout=20.0) as client:
        url = f"{base}/api/v1/streams/{channel}"
        async with client.stream("GET", url, headers=dict(headers)) as response:
            stream = EventStream(response)
            await stream.connected(within)
            yield stream
