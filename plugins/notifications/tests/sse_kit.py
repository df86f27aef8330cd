"""A real HTTP server for the test app (SSE needs a socket: httpx's ASGI transport buffers
whole responses) and a small SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from crm2_core.testing import Crm2TestApp, SignedInUser


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's signal handlers alone


@dataclass
class Message:
    event: str | None = None
    data: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def _next(self) -> Message:
        message, data = Message(), []
        async for line in self._lines:
            if line == "":
                if data or message.event:
                    message.data = "\n".join(data) if data else None
                    return message
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                message.event = value
            elif name == "data":
                data.append(value)
        raise AssertionError("the stream ended")

    async def next_event(self, within: float = 10.0) -> Message:
        """The next message that is not the ``connected`` greeting."""
        while True:
            message = await asyncio.wait_for(self._next(), within)
            if message.event != "connected":
                return message


@contextlib.asynccontextmanager
async def serving(app: Crm2TestApp) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app.app, lifespan="off", log_level="warning", timeout_graceful_shutdown=2
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def open_stream(app: Crm2TestApp, channel: str, user: SignedInUser) -> AsyncIterator[Stream]:
    async with serving(app) as base, httpx.AsyncClient(timeout=20.0) as client:
        url = f"{base}/api/v1/streams/{channel}"
        async with client.stream("GET", url, headers=user.headers) as response:
            assert response.status_code == 200, response.status_code
            stream = Stream(response)
            first = await asyncio.wait_for(stream._next(), 10)
            assert first.event == "connected"
            yield stream
