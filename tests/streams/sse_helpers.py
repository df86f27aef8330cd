"""A real HTTP server for a test app, and a small SSE client that reads it over TCP.

httpx's in-process ASGI transport collects the whole response before
returning it, so an endless SSE stream needs a socket: the test app is served
by uvicorn on 127.0.0.1 (a free port) inside the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from crm2_core.http.server import bind_server
from crm2_core.testing import Crm2TestApp


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's signal handlers alone


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.task, 10)


async def start_server(app: Crm2TestApp) -> RunningServer:
    """Serve ``app`` (already started by the testing kit: lifespan off) on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app.app, lifespan="off", log_level="warning", timeout_graceful_shutdown=3
    )
    server = _Server(config)
    bind_server(app.app, server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", server, task)


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
        return await asyncio.wait_for(anext(self._messages), within)

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


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def post_item(app: Crm2TestApp, headers: dict[str, str], n: int) -> uuid.UUID:
    response = await app.client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["event_id"])


def event_ids(received: list[Message]) -> list[uuid.UUID]:
    return [uuid.UUID(m.json()["id"]) for m in received if m.event == "probe.item.created"]


def report(name: str, sent: list[uuid.UUID], received: list[uuid.UUID]) -> tuple[int, int]:
    """Print the figures; return ``(lost, duplicates)``."""
    lost = len(set(sent) - set(received))
    duplicates = len(received) - len(set(received))
    print(
        f"\n[{name}] sent={len(sent)} received={len(received)} lost={lost} duplicates={duplicates}"
    )
    return lost, duplicates
