"""The fingerprint of a streamed body, hashed as the route reads it.

A route marked ``STREAMED_BODY`` (``http/streamed.py``) reads its body itself, so
the idempotency layer cannot hash it up front. ``StreamedBody`` wraps the route's
``receive``: every chunk goes into the digest on its way past, and once the last
one has passed, the fingerprint is known and handed on (``on_complete``), which
claims the key. Whatever the route left unread is drained before its response is
stored, so that a retry is judged by the same bytes however they were chunked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from crm2_core.http.middleware import Message, Receive

# A multipart boundary, as ``IdempotencyMiddleware`` replaces it in a buffered body.
BOUNDARY_STAND_IN = b"--\0"


class ClientGone(Exception):
    """The client disconnected before its body was read to the end."""


class StreamedBody:
    """``receive`` of a streamed request, hashing its body into ``digest``.

    ``digest`` already holds the request's head (method, path, query, media type).
    ``boundary`` (a multipart body's) is replaced by ``BOUNDARY_STAND_IN`` wherever
    it occurs, as a client draws a new one for each retry; the replacement does not
    depend on where the chunks happen to split.
    """

    def __init__(
        self,
        receive: Receive,
        digest: hashlib._Hash,
        boundary: bytes | None,
        on_complete: Callable[[str], Awaitable[None]],
    ) -> None:
        self._receive = receive
        self._digest = digest
        self._marker = b"--" + boundary if boundary else b""
        self._carry = b""
        self._on_complete = on_complete
        self.complete = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self.complete:
            await self._take(message)
        return message

    async def drain(self, limit: int) -> bool:
        """Read and hash what the route left unread; ``False`` past ``limit`` bytes more."""
        drained = 0
        while not self.complete:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            drained += len(message.get("body", b""))
            if drained > limit:
                return False
            await self._take(message)
        return True

    async def _take(self, message: Message) -> None:
        self._feed(message.get("body", b""))
        if not message.get("more_body", False):
            self.complete = True
            self._digest.update(self._carry)
            self._carry = b""
            await self._on_complete(self._digest.hexdigest())

    def _feed(self, chunk: bytes) -> None:
        if not self._marker:
            self._digest.update(chunk)
            return
        buffer = self._carry + chunk
        position = 0
        while (found := buffer.find(self._marker, position)) != -1:
            self._digest.update(buffer[position:found])
            self._digest.update(BOUNDARY_STAND_IN)
            position = found + len(self._marker)
        # The last len(marker) - 1 bytes may begin a marker the next chunk completes.
        keep_from = max(position, len(buffer) - len(self._marker) + 1)
        self._digest.update(buffer[position:keep_from])
        self._carry = buffer[keep_from:]
