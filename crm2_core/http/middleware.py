"""Pure ASGI middleware: request ids, the body-size limit and the content-type gate."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

from crm2_core.errors import (
    PROBLEM_TYPE_BASE,
    Crm2Error,
    DuplicateJsonKey,
    JsonTooDeep,
    NonFiniteNumber,
    NotUtf8,
    PayloadTooLarge,
    UnsupportedCharset,
    UnsupportedMediaType,
)
from crm2_core.http.json_keys import MAX_JSON_DEPTH, json_defect, json_too_deep

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ACCEPTED_MEDIA_TYPES = (
    "application/json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    "text/csv",
)


def _declared_above(length: str | None, limit: int) -> bool:
    """A ``Content-Length`` over ``limit``: ASCII digits only (str.isdigit() takes "²"),
    however many (int() refuses past 4,300)."""
    if length is None or not (length.isascii() and length.isdigit()):
        return False
    return len(length.lstrip("0")) > 19 or int(length) > limit


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_problem(
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    request_id: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    instance: str | None = None,
    members: dict[str, Any] | None = None,
) -> None:
    """A problem+json answer from ASGI middleware, the same shape the exception handlers give
    (``members``: the problem's extension members)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if members:
        body.update(members)
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# The server's own ``send``, below every middleware's wrapper: for a long stream's body
# chunks (``crm2_core.streams.response``), which no layer reads (they all act on the
# ``http.response.start`` message only, and that one still goes through them).
RAW_SEND_KEY = "crm2.raw_send"


def _new_request_id() -> str:
    """32 random hex digits (uuid4().hex's shape). Only logs and clients' reports match
    it, nothing trusts it: Python's generator (reseeded in a forked child) is enough,
    without the system call ``os.urandom`` makes on every request."""
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Takes a safe ``X-Request-ID`` or makes one, and echoes it on the response.

    With ``extra_headers`` it also adds those the response lacks (the security
    headers, ``crm2_core.http.security``) in the same wrapper: one layer less on
    every message a response sends.
    """

    def __init__(self, app: ASGIApp, extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.app = app
        self.extra_headers = extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        request_id = given if given and _SAFE_REQUEST_ID.match(given) else _new_request_id()
        # The request's own copy of the lifespan state (the ASGI spec asks servers for a
        # copy; some test harnesses hand every request the same dict): the principal,
        # body and request id cached in it must never leak into another request.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        scope[RAW_SEND_KEY] = send
        extra = self.extra_headers

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if extra:
                    present = {name.lower() for name, _ in headers}
                    headers.extend(h for h in extra if h[0] not in present)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


# Set on the scope a HEAD request is routed with (as a GET): a response that writes its
# body past every layer (``RAW_SEND_KEY``: the SSE streams) must send none.
HEAD_REQUEST_KEY = "crm2.head"


class HeadMiddleware:
    """HEAD answered as the GET of the same URL, without its body.

    RFC 9110 (9.1) asks a server for HEAD wherever it has GET; FastAPI routes list
    only GET, so a monitor's ``HEAD /healthz`` or ``curl -I`` got a 405. The request
    runs as a GET (same authorization, validation and headers: ``Content-Length``,
    ``ETag``); its body is dropped. The server sees HEAD in its own scope, which is
    left as it is, so it expects no body either.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        routed = {**scope, "method": "GET", HEAD_REQUEST_KEY: True}
        ended = False

        async def send_head(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await self.app(routed, receive, send_head)
        finally:
            if "route" in routed:  # the route's template for the outer layers' logs and metrics
                scope["route"] = routed["route"]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of ``content_type``, lower-cased and unquoted."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip().lower()
    return None


def _not_utf8(body: bytes) -> str | None:
    """Why ``body`` is not UTF-8 JSON text (RFC 8259 section 8.1), or ``None`` when it is.

    Python's ``json`` guesses UTF-16 and UTF-32 from NUL bytes, and a request in
    another encoding would otherwise fail with FastAPI's "error parsing the body".
    A raw NUL is never part of JSON text (inside a string it must be ``\\u0000``).
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{body[exc.start]:02X} at offset {exc.start} is not UTF-8"
    at = body.find(b"\x00")
    if at >= 0:
        return f"a NUL byte at offset {at} (UTF-16 or UTF-32?)"
    return None


def _accepted(media_type: str) -> bool:
    return media_type in ACCEPTED_MEDIA_TYPES or _is_json(media_type)


class _Refusal(NamedTuple):
    """Why a buffered body is refused before any route reads it."""

    problem: type[Crm2Error]
    detail: str
    members: dict[str, Any] | None = None


def _refusal(content_type: str | None, body: bytes) -> _Refusal | None:
    """The problem a non-empty ``body`` of ``content_type`` gets, or ``None`` to pass it on."""
    media_type = _media_type(content_type)
    if not _accepted(media_type):
        return _Refusal(
            UnsupportedMediaType,
            f"Content-Type {media_type or '(none)'} is not accepted; send application/json",
        )
    if not _is_json(media_type):
        return None
    charset = _charset(content_type)
    if charset is not None and charset not in ("utf-8", "utf8"):
        return _Refusal(
            UnsupportedCharset,
            f"charset {charset} is not accepted: JSON is read as UTF-8 only; "
            "send the body in UTF-8, with no charset or charset=utf-8",
            {"charset": charset},
        )
    why = _not_utf8(body)
    if why is not None:
        return _Refusal(NotUtf8, f"the JSON body is not UTF-8 text: {why}; send it in UTF-8")
    too_deep = _Refusal(
        JsonTooDeep,
        f"the JSON body nests arrays or objects too deeply (more than {MAX_JSON_DEPTH} "
        "levels); send a flatter document",
    )
    if json_too_deep(body):
        return too_deep
    try:
        defect = json_defect(body)
    except RecursionError:
        return too_deep
    if defect is None:
        return None
    if defect.kind == "non-finite-number":
        return _Refusal(
            NonFiniteNumber,
            f"the JSON body holds the number {defect.token}, which is not finite "
            "(JSON has no NaN or Infinity, and no value stores a number that large); "
            "send a finite number",
            {"number": defect.token},
        )
    return _Refusal(
        DuplicateJsonKey,
        f"the JSON body names the key {json.dumps(defect.token)} more than once "
        "in one object; send each key once",
        {"key": defect.token},
    )


class BodyMiddleware:
    """Reads the body once, refusing it past the limit (413), in a type no route takes (415),
    as JSON in a charset other than UTF-8 (415), in bytes that are not UTF-8 (400),
    nested too deeply to parse (400), holding ``NaN``/``Infinity``/``1e400`` (400),
    or as JSON naming a key twice in one object (422: ``json_keys.py``).

    Starlette has no body limit of its own; reading here, bounded, also lets
    the idempotency layer hash the exact bytes the route will see.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_upload_bytes: int = 0,
        streamed: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # a file upload (multipart/form-data, e.g. a CSV import) may be larger
        self.max_upload_bytes = max(max_upload_bytes, max_body_bytes)
        # Routes that read their body as a stream (documents' uploads) enforce their
        # own limit while reading: buffering them here would hold a whole file in memory.
        self.streamed = streamed

    def _limit(self, scope: Scope) -> int:
        media_type = _media_type(header(scope, b"content-type"))
        return self.max_upload_bytes if media_type == "multipart/form-data" else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if self.streamed is not None and self.streamed(scope):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        limit = self._limit(scope)
        if _declared_above(header(scope, b"content-length"), limit):
            await self._too_large(send, scope, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, scope, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refused = _refusal(header(scope, b"content-type"), body) if body else None
        if refused is not None:
            await send_problem(
                send,
                refused.problem.status,
                refused.problem.slug,
                refused.problem.title,
                refused.detail,
                request_id,
                instance=scope.get("path"),
                members=refused.members,
            )
            return
        scope.setdefault("state", {})["body"] = body
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, scope: Scope, limit: int) -> None:
        await send_problem(
            send,
            413,
            PayloadTooLarge.slug,
            PayloadTooLarge.title,
            f"the request body exceeds {limit} bytes",
            scope.get("state", {}).get("request_id"),
            instance=scope.get("path"),
        )
