"""A response's head and body leave in one write (``crm2_core.http.protocol``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from crm2_core.http.protocol import HeadWithBody, JoinedWritesProtocol
from crm2_core.testing.servers import local_server


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


class FakeCycle:
    transport: object


def _joined(transport: FakeTransport, cycle: FakeCycle | None = None) -> HeadWithBody:
    cycle = cycle or FakeCycle()
    cycle.transport = HeadWithBody(transport, asyncio.get_running_loop(), cycle)  # type: ignore[arg-type]
    return cycle.transport  # type: ignore[return-value]


async def test_head_and_body_of_one_step_are_one_write() -> None:
    transport = FakeTransport()
    joined = _joined(transport)
    joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
    joined.write(b"{}")
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


async def test_a_head_nothing_follows_in_its_step_leaves_alone_at_the_step_end() -> None:
    transport = FakeTransport()
    joined = _joined(transport)
    joined.write(b"head")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"head"]
    joined.write(b"chunk 1")
    joined.write(b"chunk 2")
    assert transport.writes == [b"head", b"chunk 1", b"chunk 2"]


async def test_once_the_head_has_left_the_cycle_writes_to_its_transport() -> None:
    """A stream's every event would otherwise pass through the head's wrapper."""
    for joined_with_body in (True, False):
        transport, cycle = FakeTransport(), FakeCycle()
        joined = _joined(transport, cycle)
        joined.write(b"head")
        assert cycle.transport is joined
        if joined_with_body:
            joined.write(b"body")
        await asyncio.sleep(0)
        assert cycle.transport is transport
    other = FakeCycle()
    stale = _joined(FakeTransport(), other)
    other.transport = "the next response's"  # keep-alive: a new cycle, its own wrapper
    stale.write(b"head")
    await asyncio.sleep(0)
    assert other.transport == "the next response's"


async def test_close_sends_the_held_head_first() -> None:
    transport = FakeTransport()
    joined = _joined(transport)
    joined.write(b"head")
    joined.close()
    await asyncio.sleep(0)
    assert transport.writes == [b"head"] and transport.closed
    assert joined.get_extra_info("peername") == "info peername"


async def test_a_head_is_dropped_when_the_connection_closed_under_it() -> None:
    transport = FakeTransport()
    joined = _joined(transport)
    joined.write(b"head")
    transport.close()  # the client went away
    await asyncio.sleep(0)
    assert transport.writes == []


async def test_the_protocol_serves_plain_and_streamed_answers() -> None:
    release = asyncio.Event()

    async def plain(request: Request) -> Response:
        return JSONResponse({"echo": (await request.body()).decode()}, status_code=201)

    async def streamed(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            await release.wait()
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    app = Starlette(routes=[Route("/plain", plain, methods=["POST"]), Route("/streamed", streamed)])
    served = local_server(app, http=JoinedWritesProtocol)
    async with served as url, httpx.AsyncClient(base_url=url) as client:
        for number in range(3):  # one keep-alive connection, one response after another
            answer = await client.post("/plain", content=f"body {number}")
            assert (answer.status_code, answer.json()) == (201, {"echo": f"body {number}"})
        async with client.stream("GET", "/streamed") as answer:
            # the head and the first chunk arrive while the stream still waits
            assert answer.status_code == 200
            chunks = answer.aiter_raw()
            assert await asyncio.wait_for(anext(chunks), 5) == b"first;"
            release.set()
            assert b"".join([c async for c in chunks]) == b"second"


async def _raw_get(url: str, head: bytes) -> bytes:
    """Send ``head`` while reading the answer (a refusal may come before the head is sent)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def send() -> None:
        writer.write(head)
        await writer.drain()

    sending = asyncio.create_task(send())
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        sending.cancel()
        writer.close()


async def test_a_request_head_past_the_limit_is_refused_with_431() -> None:
    """httptools bounds no header: 20 MB of them were read and kept for a stream's life."""

    async def ok(request: Request) -> Response:
        return JSONResponse({"body": len(await request.body())})

    app = Starlette(routes=[Route("/ok", ok, methods=["GET", "POST"])])
    big = b"".join(b"x-big-%d: %s\r\n" % (i, b"a" * 60_000) for i in range(40))
    async with local_server(app, http=JoinedWritesProtocol) as url:
        refused = await _raw_get(url, b"GET /ok HTTP/1.1\r\nhost: x\r\n" + big + b"\r\n")
        assert refused.startswith(b"HTTP/1.1 431 "), refused[:100]
        assert b"application/problem+json" in refused
        # a head under the limit (a large cookie) still goes through, twice on one connection
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(2):
                answer = await client.get("/ok", headers={"cookie": "c" * 30_000})
                assert answer.status_code == 200
            # a large body is no head: it may arrive in the head's chunk, and goes through
            answer = await client.post("/ok", content=b"b" * 3_000_000)
            assert (answer.status_code, answer.json()) == (200, {"body": 3_000_000})
        alone = b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + b"x-a: b\r\n" * 2000
        assert (await _raw_get(url, alone + b"\r\n")).startswith(b"HTTP/1.1 200 ")
