"""The SSE wire format and a lean streaming response: one extra task per open stream.

An open stream is mostly idle, and a process holds thousands of them, so what
each one keeps alive matters more than anything it does. sse-starlette's
``EventSourceResponse`` runs an anyio task group of four tasks per stream (data,
heartbeat, shutdown watcher, disconnect listener), each with its own events,
cancel scopes and lock: about half of an idle stream's memory (bench scenario 6).
Here the stream's own task sends what the connection's generator yields
(heartbeats are yielded by the generator too, between events), one small task
waits for the client's disconnect, and shutdown is one watcher per process
(:class:`ShutdownWatcher`) that closes every subscription through the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from crm2_core.http.middleware import HEAD_REQUEST_KEY, RAW_SEND_KEY

log = logging.getLogger(__name__)

SEP = "\r\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_message(
    *,
    data: str | None = None,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """One SSE message (fields in the order browsers expect), ending with a blank line."""
    lines = []
    if comment is not None:
        lines += [f": {part}" for part in _LINE_BREAK.split(comment)]
    if id is not None:
        lines.append("id: " + _LINE_BREAK.sub("", id))
    if event is not None:
        lines.append("event: " + _LINE_BREAK.sub("", event))
    if data is not None:
        lines += [f"data: {part}" for part in _LINE_BREAK.split(data)]
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    return (SEP.join(lines) + SEP + SEP).encode()


def frame(message: bytes) -> bytes:
    """A message as one HTTP/1.1 chunk (what the server would write for a body message)."""
    return b"%x\r\n%s\r\n" % (len(message), message)


Writer = Callable[[bytes], bool]


class _TransportWriter:
    """Writes framed chunks to uvicorn's (httptools) transport, as its ``send`` would.

    Only while the response is open and the transport takes bytes: ``False`` otherwise
    (flow control paused by a slow client, disconnected, complete), and the caller sends
    through the ASGI ``send`` instead, which waits for the client.
    """

    __slots__ = ("cycle",)

    def __init__(self, cycle: Any) -> None:
        self.cycle = cycle

    def __call__(self, data: bytes) -> bool:
        cycle = self.cycle
        if cycle.disconnected or cycle.response_complete or cycle.flow.write_paused:
            return False
        cycle.transport.write(data)
        return True

    def abort(self) -> None:
        """Drop the connection at once, unsent bytes and all: the server then takes the
        response as ended by the client (nothing more to send, nothing to log)."""
        self.cycle.transport.abort()
        self.cycle.disconnected = True


def transport_writer(send: Send) -> _TransportWriter | None:
    """A direct writer for the server behind ``send`` (after the response start), if any.

    ASGI has no way to write to the socket; uvicorn's httptools protocol has one
    (its ``send`` writes each body message straight to the transport, chunked).
    For any other server, ``None``: the stream sends through ``send``.
    """
    cycle = getattr(send, "__self__", None)
    if (
        type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl"
        or getattr(send, "__name__", None) != "send"
        or getattr(cycle, "chunked_encoding", None) is not True
        or not all(hasattr(cycle, a) for a in ("transport", "flow", "disconnected"))
    ):
        return None
    return _TransportWriter(cycle)


class SseResponse(Response):
    """Streams the bytes ``body`` yields; ``on_disconnect`` runs when the client goes away.

    ``on_disconnect`` must make ``body`` end soon (the connection closes its
    subscription). A send that the client does not take within ``send_timeout``
    seconds ends the stream with :class:`TimeoutError`. ``on_writer`` receives a
    direct writer to the socket (:func:`transport_writer`) once the head is sent,
    where the server has one. ``on_close`` runs once the response is over, however it ended.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        on_disconnect: Callable[[], None],
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
        on_writer: Callable[[Writer], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.body_iterator = body
        self.on_disconnect = on_disconnect
        self.on_close = on_close
        self.on_writer = on_writer
        self.send_timeout = send_timeout
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-store",
                "Connection": "keep-alive",
                "X-Accel-Buffering": "no",
                **(headers or {}),
            }
        )

    async def _listen_for_disconnect(self, receive: Receive) -> None:
        with contextlib.suppress(Exception):  # a server that fails here: treat as gone
            while (await receive())["type"] != "http.disconnect":
                pass
        self.on_disconnect()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = asyncio.create_task(self._listen_for_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method", "GET").upper() == "HEAD" or scope.get(HEAD_REQUEST_KEY):
                await send({"type": "http.response.body", "body": b""})
                return
            # Each event straight to the server, below the middleware chain: the layers
            # act on the start message only (see ``RAW_SEND_KEY``), and a busy stream
            # would otherwise pay every layer's wrapper on every event.
            write = scope.get(RAW_SEND_KEY, send)
            writer = transport_writer(write) if RAW_SEND_KEY in scope else None
            if self.on_writer is not None and writer is not None:
                self.on_writer(writer)
            try:
                async for chunk in self.body_iterator:
                    async with asyncio.timeout(self.send_timeout):
                        await write(
                            {"type": "http.response.body", "body": chunk, "more_body": True}
                        )
            except TimeoutError:
                # A client that takes no bytes (stopped reading, but keeps its socket
                # open) is an expected end of a stream, not a server failure to log
                # with a traceback: drop its connection where the server lets us.
                if writer is None:
                    raise
                log.info(
                    "stream %s dropped: the client took no bytes for %gs",
                    scope.get("path"),
                    self.send_timeout,
                )
                writer.abort()
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            listener.cancel()
            try:
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self.on_close is not None:
                    self.on_close()


class ShutdownWatcher:
    """One task per application: when its server starts stopping, ``on_exit`` runs once.

    ``stopping()`` returns the server's "is stopping" flag reader, or ``None`` while
    no server is bound (``crm2_core.http.server.bind_server``); it is asked on every
    poll, so a server bound after the streams started is still seen.
    """

    def __init__(
        self,
        on_exit: Callable[[], Awaitable[None]],
        stopping: Callable[[], Callable[[], bool] | None],
        poll_seconds: float = 0.25,
    ) -> None:
        self.on_exit = on_exit
        self.stopping = stopping
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crm2-streams-shutdown-watch")

    async def _run(self) -> None:
        while not self._server_stopping():  # noqa: ASYNC110 - a flag set by a signal handler
            await asyncio.sleep(self.poll_seconds)
        try:
            await self.on_exit()
        except Exception:
            log.exception("streams: closing the open streams at shutdown failed")

    def _server_stopping(self) -> bool:
        flag = self.stopping()
        return flag is not None and flag()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
