"""The shared Redis client never waits for ever on a Redis that accepts and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import redis.exceptions

from crm2_core.context import REDIS_SOCKET_TIMEOUT, redis_client


@contextlib.asynccontextmanager
async def hung_redis() -> AsyncIterator[str]:
    """A 127.0.0.1 server that accepts connections and neither reads nor answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    listener.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(hold, sock=listener)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def test_a_read_from_a_hung_redis_ends() -> None:
    """redis-py before 8 has no socket timeouts by default (the project allows >= 5): a
    command, or the close of a connection with unsent bytes, then waited for ever."""
    async with hung_redis() as url:
        client = redis_client(url)
        start = asyncio.get_running_loop().time()
        with pytest.raises(redis.exceptions.TimeoutError):  # not the outer bound's
            async with asyncio.timeout(REDIS_SOCKET_TIMEOUT + 5):
                await client.ping()
        assert asyncio.get_running_loop().time() - start < REDIS_SOCKET_TIMEOUT + 4
        await client.aclose()
