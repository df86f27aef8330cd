"""A client that stops reading its socket (but keeps it open) costs a bounded amount:
its buffer is cut at ``CRM2_SSE_QUEUE_SIZE`` and the stream ends within the send timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import probe_plugin
import pytest
from conftest import ProbeFactory, Serve
from sqlalchemy.ext.asyncio import async_sessionmaker

from crm2_core.events import publish
from crm2_core.streams import routes


async def test_a_client_that_stops_reading_is_cut_off_and_its_place_given_back(
    probe_app: ProbeFactory,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crm2_core.streams.response")
    monkeypatch.setattr(routes, "SEND_TIMEOUT_SECONDS", 2.0)
    app = await probe_app(sse_queue_size=20, relay_interval_seconds=0.2)
    server = await serve(app)
    headers = await app.login("admin")
    streams = app.context.streams
    host, port = server.url.removeprefix("http://").split(":")
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connecting
    reader.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(reader, (host, int(port)))
    request = (
        f"GET /api/v1/streams/probe HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {headers['Authorization']}\r\n\r\n"
    )
    await loop.sock_sendall(reader, request.encode())
    try:
        deadline = time.monotonic() + 10
        while streams.hub.subscriptions < 1:
            assert time.monotonic() < deadline, "the stream never opened"
            await asyncio.sleep(0.05)
        (subscription,) = streams.hub._subscriptions
        deadline = time.monotonic() + 10
        while subscription.direct is None:  # the stream has gone live
            assert time.monotonic() < deadline, "the stream never went live"
            await asyncio.sleep(0.05)
        # the kernel would otherwise take megabytes for the client before the server
        # sees any back-pressure
        server_socket = subscription.direct._write.cycle.transport.get_extra_info("socket")
        server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        session = async_sessionmaker(app.context.engine, expire_on_commit=False)
        for _ in range(4):  # far more than a socket's buffers and the queue hold
            async with session() as s:
                for n in range(500):
                    publish(s, probe_plugin.ItemCreated(n=n), subject="flood")
                await s.commit()
        deadline = time.monotonic() + 30
        while streams.hub.subscriptions or streams._open:
            assert time.monotonic() < deadline, (
                f"a stuck reader still holds {streams.hub.subscriptions} subscriptions, "
                f"{sum(streams._open.values())} places"
            )
            await asyncio.sleep(0.1)
        # the server has dropped the connection: the client reads to its end
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionResetError):
                while await loop.sock_recv(reader, 65536):
                    pass
    finally:
        reader.close()
    # an expected end of a stream, told once, not a server failure with a traceback
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert any("the client took no bytes" in r.getMessage() for r in caplog.records)
