"""SSE subscribers for scenarios 5 and 6; always run as their own process.

Raw asyncio protocols (no HTTP library): each connection sends one pre-encoded
``GET`` and then only counts markers in the bytes it receives, so the client stays
far cheaper than the servers under test. Control is line-based: the process prints
one JSON line on stdout when it is ready and waits for a line on stdin to go on.

``fanout`` (scenario 5): open ``--subscribers`` keep-alive connections and wait
until every one got its opening message (``--ready-marker``); print
``{"ready": n}``; on a line from stdin run two phases, then print the result:

* latency: ``--events`` triggers one at a time (``POST --trigger-url`` with
  ``--trigger-body``), the next once every subscriber has the previous event; per
  event, seconds from the trigger's send to the *last* subscriber's receipt;
* burst: ``--events`` triggers back to back (each awaiting its answer); deliveries/s
  is subscribers x events over the time from the first send to the last receipt.

An event is counted where ``--marker`` (``event: <type>``) occurs in a connection's
bytes; heartbeat comments (``: ping``) are counted separately to show they stayed
out of the measurement.

``idle`` (scenario 6): open connections up to each of ``--steps`` (comma-separated
totals); after each step print ``{"open": n}`` and wait for a line on stdin. At EOF
or after the last step's line, close everything and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

CONNECT_CONCURRENCY = 64
OPEN_TIMEOUT_S = 60.0
EVENT_TIMEOUT_S = 30.0


def raise_nofile_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (thousands of sockets); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class MarkerCounter:
    """Counts occurrences of one byte string across arbitrarily split chunks."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.tail = b""
        self.count = 0

    def feed(self, data: bytes) -> int:
        buf = self.tail + data
        found = buf.count(self.marker)
        self.count += found
        self.tail = buf[-(len(self.marker) - 1) :] if len(self.marker) > 1 else b""
        return found


class Subscriber(asyncio.Protocol):
    """One SSE connection: reports its opening message and each event marker."""

    def __init__(
        self, request: bytes, ready_marker: bytes, marker: bytes, on_event: Callable[[int], None]
    ) -> None:
        self.request = request
        self.opening = MarkerCounter(ready_marker)
        self.events = MarkerCounter(marker)
        self.pings = MarkerCounter(b"\n: ping")
        self.on_event = on_event
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            if self.opening.feed(data):
                self.opened.set_result(None)
            elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(RuntimeError(data[:300].decode(errors="replace")))
        before = self.events.count
        if self.events.feed(data):
            for index in range(before, self.events.count):
                self.on_event(index)
        self.pings.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before opening: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


def get_request(url: str, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
    lines += headers
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return parts.hostname or "127.0.0.1", parts.port or 80, request


class Fleet:
    """The open subscribers, and per event index how many have it and when the last did."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.host, self.port, self.request = get_request(args.url, args.header)
        self.ready_marker = args.ready_marker.encode()
        self.marker = args.marker.encode()
        self.subscribers: list[Subscriber] = []
        self.reached: list[int] = []
        self.last_at: list[float] = []
        self.complete: list[asyncio.Event] = []

    def expect(self, events: int) -> None:
        self.reached = [0] * events
        self.last_at = [0.0] * events
        self.complete = [asyncio.Event() for _ in range(events)]

    def _on_event(self, index: int) -> None:
        now = time.perf_counter()
        if index >= len(self.reached):
            return
        self.reached[index] += 1
        self.last_at[index] = now
        if self.reached[index] == len(self.subscribers):
            self.complete[index].set()

    async def open(self, total: int) -> None:
        """Open connections until ``total`` are open, each past its opening message."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with gate:
                sub = Subscriber(self.request, self.ready_marker, self.marker, self._on_event)
                await loop.create_connection(lambda: sub, self.host, self.port)
                await asyncio.wait_for(sub.opened, OPEN_TIMEOUT_S)
                self.subscribers.append(sub)

        await asyncio.gather(*(one() for _ in range(total - len(self.subscribers))))

    def pings(self) -> int:
        return sum(s.pings.count for s in self.subscribers)

    async def close(self) -> None:
        for sub in self.subscribers:
            if sub.transport is not None:
                sub.transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(s.closed for s in self.subscribers)), 10)


class Trigger:
    """One keep-alive connection sending a pre-encoded POST; awaits each answer."""

    def __init__(self, url: str, body: str, headers: list[str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        payload = body.encode()
        lines = [
            f"POST {parts.path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            *headers,
        ]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> float:
        """Send one trigger; the perf_counter time of the send (answer awaited, must be 2xx)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        sent = time.perf_counter()
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        if not 200 <= status < 300:
            raise RuntimeError(f"trigger answered {status}: {body[:300]!r}")
        return sent

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


async def read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def emit(obj: object) -> None:
    print(json.dumps(obj), flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fanout(args: argparse.Namespace) -> None:
    fleet = Fleet(args)
    trigger = Trigger(args.trigger_url, args.trigger_body, args.trigger_header)
    n = args.events
    fleet.expect(2 * n)
    try:
        await fleet.open(args.subscribers)
        emit({"ready": len(fleet.subscribers)})
        await read_line()
        pings_before, cpu_before = fleet.pings(), cpu_seconds()
        latencies = []
        for index in range(n):  # latency phase: one event at a time
            sent = await trigger.send()
            await asyncio.wait_for(fleet.complete[index].wait(), EVENT_TIMEOUT_S)
            latencies.append(fleet.last_at[index] - sent)
        first = None
        for _ in range(n):  # burst phase: back to back
            sent = await trigger.send()
            first = first if first is not None else sent
        for index in range(n, 2 * n):
            await asyncio.wait_for(fleet.complete[index].wait(), EVENT_TIMEOUT_S)
        assert first is not None
        burst_s = fleet.last_at[2 * n - 1] - first
        emit({
            "subscribers": len(fleet.subscribers),
            "events": n,
            "latency_s": latencies,
            "burst_s": burst_s,
            "deliveries_per_s": len(fleet.subscribers) * n / burst_s,
            "pings_during": fleet.pings() - pings_before,
            "client_cpu_s": cpu_seconds() - cpu_before,
        })  # fmt: skip
    finally:
        await trigger.close()
        await fleet.close()


async def idle(args: argparse.Namespace) -> None:
    fleet = Fleet(args)
    try:
        for total in (int(s) for s in args.steps.split(",")):
            await fleet.open(total)
            emit({"open": len(fleet.subscribers)})
            if not await read_line():
                break
    finally:
        await fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["fanout", "idle"])
    parser.add_argument("--url", required=True, help="the SSE stream")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (GET)")
    parser.add_argument("--ready-marker", default="event: connected")
    parser.add_argument("--marker", default="event: deals.deal.created")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--trigger-url", default="")
    parser.add_argument("--trigger-body", default="{}")
    parser.add_argument("--trigger-header", action="append", default=[])
    parser.add_argument("--steps", default="0,1000", help="idle: connection totals")
    args = parser.parse_args()
    raise_nofile_limit()
    asyncio.run(fanout(args) if args.mode == "fanout" else idle(args))


if __name__ == "__main__":
    main()
