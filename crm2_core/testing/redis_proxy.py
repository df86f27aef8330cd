"""A TCP proxy to the test Redis on 127.0.0.1, to play a Redis outage without stopping it.

``state`` is ``"up"`` (bytes pass), ``"down"`` (every connection dropped, new ones
closed at once), ``"hung"`` (connections dropped, new ones accepted and nothing ever
answered) or ``"stalled"`` (as ``"hung"``, but the open connections stay open and
nothing more passes on them either way: a Redis paused, or a network that drops
packets without a reset)::

    async with flaky_redis(url) as proxy:
        app = await crm2_app_factory(redis_url=proxy.url, redis_prefix=prefix)
        proxy.set("down")

The shared Redis is never stopped; the proxy stops with its ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["FlakyRedis", "flaky_redis"]

State = Literal["up", "down", "hung", "stalled"]


class FlakyRedis:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.db = parts.path
        self.state: State = "up"
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self.db}"

    def set(self, state: State) -> None:
        """Switch state. Entering ``down`` or ``hung`` drops every connection open through
        the proxy; so does leaving ``stalled`` (what it swallowed broke their protocol)."""
        drop = state in ("down", "hung") or (self.state == "stalled" and state != "stalled")
        self.state = state
        if drop:
            for writer in list(self.open):
                writer.close()
            self.open.clear()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        self.set("down")
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.state == "down":
            writer.close()
            return
        if self.state in ("hung", "stalled"):
            self.open.add(writer)
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass  # swallowed: no answer ever comes
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.state == "stalled":
                        continue  # swallowed, the connection kept open
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()
                self.open.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def flaky_redis(target: str) -> AsyncIterator[FlakyRedis]:
    proxy = FlakyRedis(target)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
