"""``Idempotency-Key`` on POST: one effect per key, the stored response replayed.

Same key and same request → the stored response (``Idempotent-Replayed: true``);
same key, other request → 422; the first still running → the repeat waits for it
(``CRM2_IDEMPOTENCY_WAIT_SECONDS``), then replays its response, or answers 409.
Keys are scoped per principal and kept ``CRM2_IDEMPOTENCY_TTL_SECONDS``.
Anonymous requests (login) are passed through: there is no one to scope a key to.

A response marked ``Cache-Control: no-store`` (a new API key, shown once) is not
kept: only its status and headers are. The key still stands for the request that
ran, but a repeat gets a 409 ``idempotent-response-not-kept`` (with the stored
``Location``, if any) instead of the secret: the caller looks the result up, or
discards it and asks again with a new key.

The key lives in the request's own transaction (``SessionDep``, see
``IdempotentRequest``): claimed by its first write, completed with the response
by its last, committed before a byte of the response is sent. So a crash leaves
either nothing (no effect, no key) or both (the effect and its stored response),
never an effect whose retry would run it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

from sqlalchemy.exc import DBAPIError

from crm2_core.context import AUTHENTICATOR, AppContext
from crm2_core.errors import (
    BadRequest,
    Crm2Error,
    IdempotencyInFlight,
    IdempotentResponseNotKept,
    PayloadTooLarge,
)
from crm2_core.http.idempotency_body import BOUNDARY_STAND_IN, ClientGone, StreamedBody
from crm2_core.http.idempotency_tx import (
    IDEMPOTENCY_STATE,
    IdempotentRequest,
    StoredResponse,
    is_lock_wait,
)
from crm2_core.http.middleware import ASGIApp, Message, Receive, Scope, Send, header, send_problem
from crm2_core.http.models import IdempotencyRecord
from crm2_hookspecs import Principal

__all__ = ["IdempotencyMiddleware", "IdempotentRequest", "StoredResponse"]

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_MULTIPART_BOUNDARY = re.compile(
    r'(?i)\s*multipart/form-data\s*;(?:.*;)?\s*boundary=("?)(?P<boundary>[^";]{1,200})\1'
)
REPLAYED_HEADERS = {"content-type", "location", "etag", "cache-control"}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context
        # What a streamed body may hold past what its route read (``_settle_streamed``).
        self.limit = context.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        if not _KEY.match(key):
            await send_problem(
                send,
                400,
                BadRequest.slug,
                BadRequest.title,
                "Idempotency-Key must be 1-255 visible ASCII characters",
                request_id,
                instance=scope.get("path"),
            )
            return
        principal = await self._principal(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        owner = f"{principal.kind}:{principal.id}"
        streamed: StreamedBody | None = None
        if "body" in scope.get("state", {}):
            pending = IdempotentRequest(self.context, owner, key, self._fingerprint(scope))
        else:
            # A streamed body (``http/streamed.py``) is hashed as the route reads it;
            # the key is claimed once it has been read to its end.
            pending = IdempotentRequest(self.context, owner, key, None)
            digest, boundary = self._streamed_head(scope)
            streamed = StreamedBody(receive, digest, boundary, pending.body_read)
            receive = streamed.receive
        scope.setdefault("state", {})[IDEMPOTENCY_STATE] = pending
        try:
            await self._run(scope, receive, send, pending, request_id, streamed)
        finally:
            await pending.close()

    async def _principal(self, scope: Scope) -> Principal | None:
        authenticator = self.context.find(AUTHENTICATOR)
        if authenticator is None:
            return None
        try:
            principal: Principal | None = await authenticator.from_scope(scope)
        except Crm2Error:
            return None
        return principal

    @staticmethod
    def _fingerprint(scope: Scope) -> str:
        digest, boundary = _head(scope)
        body: bytes = scope["state"]["body"]
        if boundary is not None:
            body = body.replace(b"--" + boundary, BOUNDARY_STAND_IN)
        digest.update(body)
        return digest.hexdigest()

    @staticmethod
    def _streamed_head(scope: Scope) -> tuple[hashlib._Hash, bytes | None]:
        digest, boundary = _head(scope)
        digest.update(b"streamed\0")
        return digest, boundary

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        pending: IdempotentRequest,
        request_id: str | None,
        streamed: StreamedBody | None,
    ) -> None:
        # The response is held back until the transaction that stores it has
        # committed: a client that has seen it can rely on a replay.
        messages: list[Message] = []
        path = scope.get("path")

        async def hold(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, hold)
            status, headers, body = _response_of(messages)
            if streamed is not None:
                await self._settle_streamed(streamed, pending, status)
            await pending.finish(status, headers, body)
        except ClientGone:
            return  # nothing is kept (``close`` rolls back) and nobody is there to answer
        except StoredResponse as stored:
            if stored.record.response_body is None:  # a no-store response: not kept
                await _not_kept(send, stored.record, request_id, path)
            else:
                await _replay(send, stored.record)
            return
        except Crm2Error as exc:  # raised by a claim that ran only in ``finish``
            await send_problem(
                send, exc.status, exc.slug, exc.title, exc.detail, request_id, instance=path
            )
            return
        except DBAPIError as exc:
            if pending.claimed or not is_lock_wait(exc):
                raise
            # SQLite: the route's BEGIN waited ``CRM2_IDEMPOTENCY_WAIT_SECONDS`` for
            # the write lock a duplicate holds.
            busy = IdempotencyInFlight("a request with this Idempotency-Key is still running")
            await send_problem(
                send, busy.status, busy.slug, busy.title, busy.detail, request_id, instance=path
            )
            return
        for message in messages:
            await send(message)

    async def _settle_streamed(
        self, streamed: StreamedBody, pending: IdempotentRequest, status: int
    ) -> None:
        """Judge a streamed request by its whole body, however much of it the route read.

        A route may answer before its body ends (a file part read, the epilogue not).
        The rest is read now, so that the fingerprint does not depend on where the
        chunks split. An error the route answered before the key was claimed may be
        its own first effect seen again (a file "already attached"): a retry of a
        request whose response is stored gets that response, another request 422.
        """
        if not streamed.complete and not await streamed.drain(self.limit):
            if status < 400:
                raise PayloadTooLarge(
                    f"the body goes on past what the route read by more than {self.limit} bytes"
                )
            return
        if status >= 400 and not pending.claimed:
            await pending.check_stored()


def _head(scope: Scope) -> tuple[hashlib._Hash, bytes | None]:
    """A digest of the request's method, path, query and media type; its multipart boundary.

    A client draws a new boundary for each retry (browsers, httpx): only the parts
    count, so the boundary is left out of the media type and replaced in the body.
    """
    digest = hashlib.sha256()
    content_type = header(scope, b"content-type") or ""
    boundary = _MULTIPART_BOUNDARY.match(content_type)
    if boundary is not None:
        content_type = "multipart/form-data"
    for part in (
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode(),
        content_type,
    ):
        digest.update(part.encode() + b"\0")
    return digest, None if boundary is None else boundary.group("boundary").encode("latin-1")


def _response_of(messages: list[Message]) -> tuple[int, list[tuple[str, str]], bytes | None]:
    """Status, replayed headers and body of a response; no body when it must not be kept."""
    status = 500
    kept: list[tuple[str, str]] = []
    body = bytearray()
    for message in messages:
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", []):
                if name.decode().lower() in REPLAYED_HEADERS:
                    kept.append((name.decode().lower(), value.decode()))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
    return status, kept, None if _no_store(kept) else bytes(body)


def _no_store(headers: list[tuple[str, str]]) -> bool:
    return any(
        name == "cache-control"
        and "no-store" in (part.strip().lower() for part in value.split(","))
        for name, value in headers
    )


def _stored_headers(row: IdempotencyRecord) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in json.loads(row.response_headers or "[]")]


async def _not_kept(
    send: Send, row: IdempotencyRecord, request_id: str | None, path: str | None
) -> None:
    error = IdempotentResponseNotKept(
        "a request with this Idempotency-Key was carried out; its response held what is shown "
        "only once (Cache-Control: no-store) and was not kept. Look the result up, or discard "
        "it and send a new request with a new Idempotency-Key"
    )
    headers = [(k, v) for k, v in _stored_headers(row) if k in (b"location", b"cache-control")]
    await send_problem(
        send,
        error.status,
        error.slug,
        error.title,
        error.detail,
        request_id,
        headers,
        instance=path,
    )


async def _replay(send: Send, row: IdempotencyRecord) -> None:
    body = row.response_body or b""
    headers = _stored_headers(row)
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send(
        {"type": "http.response.start", "status": row.response_status or 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})
