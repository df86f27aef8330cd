"""Reading one file out of a ``multipart/form-data`` body as it arrives.

The body is parsed chunk by chunk (python-multipart's push parser): the file
part's bytes are handed on as they come, so an upload is never held in memory.
The part named ``file`` with a filename is the upload; other parts, before and
after it, are skipped (bounded), and the body is read to its end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from crm2_documents.content import SNIFF_BYTES
from crm2_documents.errors import InvalidUpload, PartHeadersTooLarge

FIELD = "file"
MAX_OTHER_PART_BYTES = 65_536  # the other parts' data, and the body after the file
MAX_BOUNDARY = 70  # RFC 2046's limit on a multipart boundary
# Each part's headers, bounded on their own: a browser sends two (Content-Disposition,
# Content-Type). Below python-multipart's own limits (8 lines of 4,224 bytes in recent
# versions, none in old ones), so these are the ones a client meets, with their message.
MAX_PART_HEADERS = 6
MAX_PART_HEADER_BYTES = 4096  # name and value of one header line


def _too_many_headers() -> PartHeadersTooLarge:
    return PartHeadersTooLarge(f"a multipart part may have at most {MAX_PART_HEADERS} headers")


def _header_too_long() -> PartHeadersTooLarge:
    return PartHeadersTooLarge(
        f"a multipart part's header line may be at most {MAX_PART_HEADER_BYTES} bytes long"
    )


@dataclass
class _Tail:
    """The bytes the body may still hold after the file part (``None``: not there yet)."""

    left: int | None = None


@dataclass
class FilePart:
    """The upload: its declared name and type, its first bytes, and an iterator of the rest."""

    filename: str | None
    content_type: str | None
    head: bytes
    rest: AsyncIterator[bytes]


def boundary_of(content_type: str | None) -> bytes:
    media, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise InvalidUpload("send the file as multipart/form-data with a part named 'file'")
    if len(boundary) > MAX_BOUNDARY:
        raise InvalidUpload(f"the multipart boundary is longer than {MAX_BOUNDARY} characters")
    return bytes(boundary)


async def _events(
    stream: AsyncIterator[bytes], boundary: bytes, tail: _Tail
) -> AsyncIterator[tuple[str, Any]]:
    items: deque[tuple[str, Any]] = deque()
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}}

    def on_part_begin() -> None:
        state["headers"], state["count"] = {}, 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]
        _bounded()

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]
        _bounded()

    def _bounded() -> None:
        if len(state["field"]) + len(state["value"]) > MAX_PART_HEADER_BYTES:
            raise _header_too_long()

    def on_header_end() -> None:
        state["count"] += 1
        if state["count"] > MAX_PART_HEADERS:
            raise _too_many_headers()
        state["headers"][bytes(state["field"]).lower()] = bytes(state["value"])
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        items.append(("headers", state["headers"]))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        items.append(("data", bytes(data[start:end])))

    def on_part_end() -> None:
        items.append(("end", None))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        async for chunk in stream:
            if tail.left is not None:
                tail.left -= len(chunk)
                if tail.left < 0:
                    raise InvalidUpload(
                        f"the body goes on past the file by more than {MAX_OTHER_PART_BYTES} bytes"
                    )
            if chunk:
                parser.write(chunk)
            while items:
                yield items.popleft()
        parser.finalize()
    except FormParserError as exc:
        if "Maximum header" in str(exc):  # python-multipart's own bound, met first
            raise (_too_many_headers() if "count" in str(exc) else _header_too_long()) from exc
        raise InvalidUpload(f"malformed multipart body: {exc}") from exc
    while items:
        yield items.popleft()


async def read_file_part(stream: AsyncIterator[bytes], content_type: str | None) -> FilePart:
    """Advance ``stream`` to the file part and read its first ``SNIFF_BYTES``."""
    tail = _Tail()
    events = _events(stream, boundary_of(content_type), tail)
    skipped = 0
    async for kind, value in events:
        if kind != "headers":
            continue
        _, options = parse_options_header(value.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and b"filename" in options:
            filename = options[b"filename"].decode("utf-8", "replace")
            declared = value.get(b"content-type", b"").decode("latin-1") or None
            return await _file(events, tail, filename, declared)
        async for kind, data in events:
            if kind == "end":
                break
            skipped += len(data or b"")
            if skipped > MAX_OTHER_PART_BYTES:
                raise InvalidUpload(f"form fields are limited to {MAX_OTHER_PART_BYTES} bytes")
    raise InvalidUpload("no part named 'file' with a filename in the multipart body")


async def _file(
    events: AsyncIterator[tuple[str, Any]], tail: _Tail, filename: str, declared: str | None
) -> FilePart:
    head = bytearray()
    ended = False
    while len(head) < SNIFF_BYTES:
        try:
            kind, data = await events.__anext__()
        except StopAsyncIteration:
            raise InvalidUpload("the multipart body ends inside the file part") from None
        if kind == "end":
            ended = True
            break
        head += data

    async def rest() -> AsyncIterator[bytes]:
        if not ended:
            async for kind, data in events:
                if kind == "end":
                    break
                if data:
                    yield data
            else:
                raise InvalidUpload("the multipart body ends inside the file part")
        tail.left = MAX_OTHER_PART_BYTES
        await _read_to_the_end(events)

    return FilePart(filename, declared, bytes(head), rest())


async def _read_to_the_end(events: AsyncIterator[tuple[str, Any]]) -> None:
    """Read the parts after the file and the closing boundary (``_Tail`` bounds them).

    The request is then read to its end before the upload is recorded: its
    ``Idempotency-Key`` is claimed there, so a retry is known before it writes.
    """
    async for _ in events:
        pass
