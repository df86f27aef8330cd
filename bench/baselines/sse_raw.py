"""Baseline for scenario 5: a raw asyncio server writing pre-encoded SSE bytes to every socket.

No framework and no per-connection task: ``GET /stream`` answers the same response
head as crm2's stream (chunked ``text/event-stream``) and the opening message, then
keeps the transport; ``POST /publish`` writes one pre-encoded chunk (the exact
event message crm2 sent, read from ``BENCH_EVENT_FILE``) to every open stream and
answers how many. ``GET /healthz`` answers 200. One process, one event loop::

    python bench/baselines/sse_raw.py --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
from pathlib import Path


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


OPENING = Path(os.environ["BENCH_OPENING_FILE"]).read_bytes()
EVENT_CHUNK = chunk(Path(os.environ["BENCH_EVENT_FILE"]).read_bytes())
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-store\r\nconnection: keep-alive\r\nx-accel-buffering: no\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
) + chunk(OPENING)
STREAMS: set[asyncio.Transport] = set()


def plain(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


class Handler(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.handle(head.split(" ", 2)[:2])

    def handle(self, request: list[str]) -> None:
        assert self.transport is not None
        method, path = request
        if method == "GET" and path.startswith("/stream"):
            self.transport.write(STREAM_HEAD)
            STREAMS.add(self.transport)
        elif method == "POST" and path == "/publish":
            for stream in STREAMS:
                stream.write(EVENT_CHUNK)
            self.transport.write(plain("200 OK", str(len(STREAMS)).encode()))
        elif path == "/healthz":
            self.transport.write(plain("200 OK", b'{"status":"ok"}'))
        else:
            self.transport.write(plain("404 Not Found", b"{}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            STREAMS.discard(self.transport)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
