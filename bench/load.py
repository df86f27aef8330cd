"""Load generator for the benchmark suite; runs as its own process.

Two modes, both bounded by ``--duration`` and printing one JSON object on stdout:

* ``open``: requests at a fixed arrival rate (``--rate`` req/s). Latency is measured
  from each request's *intended* send time, so a server (or client) that falls
  behind is charged for the queueing it causes (no coordinated omission).
* ``closed``: ``--connections`` concurrent keep-alive connections, each sending the
  next request as soon as the previous answer arrived; reports the maximum req/s.

Requests are ``GET`` unless ``--method POST`` (or PUT/PATCH/DELETE) is given, with
the bytes of ``--body-file`` as a JSON body (``--content-type`` to change that); every
request of a run sends the same body.

Two clients, in both modes: ``httpx`` (an ``httpx.AsyncClient``) and ``raw``
(pre-encoded HTTP/1.1 keep-alive requests over asyncio streams). ``raw`` costs far
less CPU per request, so on a small machine it is the one that can saturate a
one-worker server (use it for throughput) and the one that keeps an open-loop
schedule of hundreds of requests a second when other processes load the machine.
Latencies go into a log-bucket histogram (about 1 % relative error).

Example::

    python bench/load.py closed --url http://127.0.0.1:8000/healthz --connections 32 \
        --duration 5 --client raw
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# -- histogram ------------------------------------------------------------------------

_GROWTH = 1.02  # bucket upper bounds grow by 2 %; reporting the midpoint gives ~1 % error
_LOG_GROWTH = math.log(_GROWTH)


class LogHistogram:
    """HDR-style histogram: counts per logarithmic bucket of microseconds."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.max_us = 0.0

    def record(self, seconds: float) -> None:
        us = max(seconds * 1e6, 1.0)
        self.counts[int(math.log(us) / _LOG_GROWTH)] += 1
        self.total += 1
        self.max_us = max(self.max_us, us)

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (bucket midpoint), or None when empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(self.total * p / 100.0))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                low, high = _GROWTH**bucket, _GROWTH ** (bucket + 1)
                return min((low + high) / 2, self.max_us) / 1000.0
        return self.max_us / 1000.0

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.total,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "max_ms": self.max_us / 1000.0 if self.total else None,
        }


# -- clients --------------------------------------------------------------------------


class RawConnection:
    """One HTTP/1.1 keep-alive connection sending one pre-encoded request again and again."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self) -> int:
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.aclose()
        return status

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _raw_request(
    url: str, headers: dict[str, str], method: str = "GET", body: bytes | None = None
) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return host, port, head + (body or b"")


def _send(client: Any, args: argparse.Namespace) -> Any:
    """One httpx request of the run (``client.request`` with the run's method and body)."""
    return client.request(args.method, args.url, content=args.body)


class Result:
    def __init__(self) -> None:
        self.hist = LogHistogram()
        self.ok = 0
        self.errors = 0
        self.statuses: Counter[int] = Counter()

    def record(self, intended: float, status: int | None) -> None:
        if status is None:
            self.errors += 1
            return
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.ok += 1
            self.hist.record(time.perf_counter() - intended)
        else:
            self.errors += 1


async def _closed(args: argparse.Namespace, headers: dict[str, str]) -> tuple[Result, float]:
    result = Result()
    start = time.perf_counter()
    deadline = start + args.duration

    if args.client == "raw":
        host, port, request = _raw_request(args.url, headers, args.method, args.body)

        async def worker() -> None:
            conn = RawConnection(host, port, request)
            try:
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    try:
                        status: int | None = await conn.get()
                    except (OSError, asyncio.IncompleteReadError, ValueError):
                        status = None
                        await conn.aclose()
                    result.record(sent, status)
            finally:
                await conn.aclose()

        await asyncio.gather(*(worker() for _ in range(args.connections)))
    else:
        import httpx

        limits = httpx.Limits(max_connections=args.connections)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10.0) as client:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    try:
                        status: int | None = (await _send(client, args)).status_code
                    except httpx.HTTPError:
                        status = None
                    result.record(sent, status)

            await asyncio.gather(*(worker() for _ in range(args.connections)))
    return result, time.perf_counter() - start


async def _open(args: argparse.Namespace, headers: dict[str, str]) -> tuple[Result, float]:
    """Send ``rate * duration`` requests, each at its intended time, whatever is pending."""
    result = Result()
    total = int(args.rate * args.duration)
    async with _open_sender(args, headers) as send:

        async def one(intended: float) -> None:
            result.record(intended, await send())

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            intended = start + i / args.rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(intended))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:  # a bounded grace period; what is still pending then counts as an error
            _, pending = await asyncio.wait(tasks, timeout=args.grace)
            for task in pending:
                task.cancel()
            result.errors += len(pending)
        elapsed = time.perf_counter() - start
    return result, elapsed


@contextlib.asynccontextmanager
async def _open_sender(
    args: argparse.Namespace, headers: dict[str, str]
) -> AsyncIterator[Callable[[], Awaitable[int | None]]]:
    """A coroutine function sending one request of the run: its status, None on failure.

    ``raw``: a pool of at most ``--connections`` keep-alive ``RawConnection``s, the most
    recently used first (so only as many are opened as the arrival rate needs); a request
    finding none idle waits for one, and that wait counts in its latency. About a tenth of
    httpx's CPU per request, so the client keeps its schedule on a loaded machine.
    """
    if args.client == "raw":
        host, port, request = _raw_request(args.url, headers, args.method, args.body)
        pool: asyncio.LifoQueue[RawConnection] = asyncio.LifoQueue()
        conns = [RawConnection(host, port, request) for _ in range(args.connections)]
        for conn in conns:
            pool.put_nowait(conn)

        async def send_raw() -> int | None:
            conn = await pool.get()
            try:
                return await conn.get()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                await conn.aclose()
                return None
            finally:
                pool.put_nowait(conn)

        try:
            yield send_raw
        finally:
            for conn in conns:
                await conn.aclose()
        return

    import httpx

    limits = httpx.Limits(max_connections=args.connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10.0) as client:

        async def send_httpx() -> int | None:
            try:
                return int((await _send(client, args)).status_code)
            except httpx.HTTPError:
                return None

        yield send_httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--rate", type=float, default=100.0, help="open mode: req/s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--grace", type=float, default=5.0, help="open mode: drain timeout")
    parser.add_argument(
        "--method", default="GET", choices=["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    parser.add_argument("--body-file", help="request body (sent with every request)")
    parser.add_argument("--content-type", default="application/json", help="of --body-file")
    args = parser.parse_args(argv)
    args.body = Path(args.body_file).read_bytes() if args.body_file else None
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("the load generator only targets 127.0.0.1")
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    if args.body is not None:
        headers.setdefault("Content-Type", args.content_type)

    runner = _open if args.mode == "open" else _closed
    result, elapsed = asyncio.run(runner(args, headers))
    out = {
        "mode": args.mode,
        "client": args.client,
        "url": args.url,
        "method": args.method,
        "duration_s": elapsed,
        "target_rate": args.rate if args.mode == "open" else None,
        "connections": args.connections,
        "ok": result.ok,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "rps": result.ok / elapsed if elapsed > 0 else 0.0,
        "latency": result.hist.summary(),
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
