"""uvicorn's HTTP/1.1 protocol with a response's head and body sent in one write.

uvicorn (httptools) writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two
``send()`` system calls for one small JSON answer. On TCP a ``send()`` is dear (on
loopback the sender's call also delivers the bytes to the receiver): measured on a
create, the second one cost more CPU than the route's whole response serialization.

Here a response's first write (its head) is held until the next write, which carries
it, and goes alone at the end of the event-loop step it was made in when nothing
follows within it: a plain response (start then body in one step, as Starlette sends
them) leaves in one write, and a streamed response's head still leaves at once, before
its first chunk is ready. Nothing else changes: once the head has left, the response's
cycle gets its transport back, so every later write (a stream's events) goes straight
through.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadWithBody:
    """A transport for one response whose first write waits for the second (see above)."""

    __slots__ = ("_cycle", "_held", "_loop", "_transport", "_written")

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, cycle: Any
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._cycle = cycle
        self._held: bytes | None = None
        self._written = False

    def write(self, data: bytes) -> None:
        if not self._written:
            self._written = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        self._transport.write(data if held is None else held + data)
        self._step_aside()

    def flush(self) -> None:
        """Send the held head alone (nothing followed it in its step)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)
        self._step_aside()

    def _step_aside(self) -> None:
        """The head has left: the cycle writes to the transport itself from now on."""
        if self._cycle.transport is self:
            self._cycle.transport = self._transport

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# A request's line and headers past this many bytes are refused with 431: httptools
# sets no bound of its own, and a stream holds its request's headers for its whole life
# (up to CRM2_SSE_MAX_CONNECTION_SECONDS), CRM2_SSE_MAX_CONNECTIONS_PER_PRINCIPAL at once.
MAX_HEAD_BYTES = 64 * 1024
REFUSED_CLOSE_SECONDS = 1.0

HEAD_TOO_LARGE = json.dumps(
    {
        "type": "urn:crm2:problem:request-header-fields-too-large",
        "title": "Request header fields too large",
        "status": 431,
        "detail": f"the request line and headers exceed {MAX_HEAD_BYTES} bytes",
    }
).encode()


class JoinedWritesProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; each request's response writes through ``HeadWithBody``;
    a request head over ``MAX_HEAD_BYTES`` is answered 431 and its connection closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._in_head = True  # a request's head is being read (not its body)
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused head, read and dropped until the close
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # still in a head after this chunk: the chunk was head (but for a pipelined
        # request's end before it, counted too: the bound is loose by one chunk at most)
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/problem+json\r\n"
                b"content-length: " + str(len(HEAD_TOO_LARGE)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + HEAD_TOO_LARGE
            )
            # closed a moment later, not now: a close with the client's bytes unread
            # resets the connection, and the reset may destroy the answer before it is read
            self._refused = True
            self.loop.call_later(REFUSED_CLOSE_SECONDS, self.transport.close)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()
        cycle = self.cycle
        # None or an earlier cycle when the request was an upgrade (a WebSocket)
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadWithBody(self.transport, self.loop, cycle)  # type: ignore[assignment]
