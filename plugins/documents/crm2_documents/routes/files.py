"""Files: streamed upload of a version, download with Range, short-lived signed URLs.

Every download answers with ``Content-Disposition: attachment`` (a browser never
renders it inline), ``X-Content-Type-Options: nosniff`` and the type sniffed
from the bytes at upload; the ETag is the file's SHA-256.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from crm2_core.api import (
    STREAMED_BODY,
    APIRouter,
    ContextDep,
    OptionalIfMatch,
    SessionDep,
    acting_user,
    new_id,
    problem_responses,
)
from crm2_documents import signing
from crm2_documents.content import content_disposition
from crm2_documents.errors import BadSignature, RangeNotSatisfiable
from crm2_documents.models import Version
from crm2_documents.routes.deps import DocumentsRead, DocumentsWrite
from crm2_documents.schemas.documents import SignedUrl, SignedUrlRequest, VersionPublic
from crm2_documents.service import versions as service

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A single range of this server's files is far shorter; a longer Range (a list of many
# ranges) is ignored like any other it does not serve, never a 422 for the download.
MAX_RANGE_HEADER = 200
RangeHeader = Annotated[
    str | None,
    Header(
        alias="Range",
        description=f"one range, bytes=first-last; others (or over {MAX_RANGE_HEADER} "
        "characters) are ignored: the whole file",
    ),
]
UPLOAD_DOC = {
    **STREAMED_BODY,
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
}


@router.post(
    "/documents/{document_id}/versions",
    response_model=VersionPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_DOC,
    responses=problem_responses(413, 415, 503),  # 503: the storage backend refused it
)
async def upload_version(
    document_id: uuid.UUID,
    request: Request,
    principal: DocumentsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> VersionPublic:
    """Upload a file (multipart/form-data, part "file") as the newest version.

    Streamed: the size limit applies while reading (413, nothing kept), the type is
    sniffed from the bytes and checked against the kind (415), duplicates of a file
    already attached to the same record are 409. Honours Idempotency-Key.
    """
    length = request.headers.get("content-length")
    version_id = new_id()
    received = await service.receive(
        context,
        principal,
        document_id,
        version_id,
        request.stream(),
        request.headers.get("content-type"),
        int(length) if length and length.isascii() and length.isdigit() else None,
    )
    service.discard_unless_committed(session, context, received)
    try:
        _, version = await service.add_version(
            session, context, principal, document_id, version_id, received, if_match
        )
    except BaseException:
        await service.discard(context, received)
        raise
    response.headers["Location"] = (
        f"/api/v1/documents/documents/{document_id}/versions/{version.number}"
    )
    return VersionPublic.model_validate(version)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=`` range; ``None`` for the whole file.

    A Range this server does not understand (several ranges, another unit, bad
    syntax, longer than ``MAX_RANGE_HEADER``) is ignored, as RFC 9110 allows: the whole
    file. One that lies outside
    the file is 416.
    """
    if not header or len(header) > MAX_RANGE_HEADER:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if first and last and int(last) < int(first):
        return None  # invalid syntax (RFC 9110 14.1.1): ignored
    if not first:  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        # never the caller's header back: what is available (RFC 9110 15.5.17)
        raise RangeNotSatisfiable(
            f"the range asked for is outside the file: bytes 0-{size - 1} of {size} exist",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _none_match(header: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag``: weak comparison, ``*`` matches (RFC 9110)."""
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


async def file_response(
    context: ContextDep, version: Version, range_header: str | None, if_none_match: str | None
) -> Response:
    etag = f'"{version.sha256}"'
    headers = {
        "ETag": etag,
        "Content-Disposition": content_disposition(version.filename),
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if if_none_match and _none_match(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    chosen = _byte_range(range_header, version.size)
    code = status.HTTP_200_OK
    start, end = 0, version.size
    if chosen is not None:
        start, end = chosen
        code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{version.size}"
    headers["Content-Length"] = str(end - start)
    body = await service.open_file(context, version, start, end)
    return StreamingResponse(
        body, status_code=code, media_type=version.content_type, headers=headers
    )


@router.get(
    "/documents/{document_id}/download",
    response_class=StreamingResponse,
    responses={
        206: {"description": "the requested byte range"},
        304: {"description": "If-None-Match holds the file's ETag"},
        **problem_responses(404, 416, 503),
    },
)
async def download(
    document_id: uuid.UUID,
    principal: DocumentsRead,
    session: SessionDep,
    context: ContextDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="default: newest")] = None,
    range_header: RangeHeader = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=500)] = None,
) -> Response:
    """The file of a version (default: the newest), streamed as an attachment; Range works."""
    _, found = await service.get_version(session, principal, document_id, version)
    return await file_response(context, found, range_header, if_none_match)


# 503: no signing key (start-up refuses that; settings can still change)
@router.post(
    "/documents/{document_id}/signed-url",
    response_model=SignedUrl,
    responses=problem_responses(503),
)
async def signed_url(
    document_id: uuid.UUID,
    body: SignedUrlRequest,
    principal: DocumentsRead,
    session: SessionDep,
    context: ContextDep,
) -> SignedUrl:
    """A URL that downloads one version without credentials until it expires."""
    document, found = await service.get_version(session, principal, document_id, body.version)
    longest: int = context.plugin_settings("documents").signed_url_max_seconds
    expires = int(time.time()) + min(body.expires_in, longest)
    # the credential asked with: a key's URL stops with the key, not with its creator
    issuer, kind, param = (
        (principal.id, "api_key", "key")
        if principal.kind == "api_key"
        else (acting_user(principal), "user", "by")
    )
    key = signing.signing_key(context)
    signature = signing.sign(key, document.id, found.id, expires, issuer, kind)
    url = (
        f"/api/v1/documents/signed/{document.id}/{found.id}"
        f"?expires={expires}&{param}={issuer}&signature={signature}"
    )
    return SignedUrl(url=url, expires_at=datetime.fromtimestamp(expires, UTC))


@router.get(
    "/signed/{document_id}/{version_id}",
    response_class=StreamingResponse,
    responses={
        206: {"description": "the requested byte range"},
        304: {"description": "If-None-Match holds the file's ETag"},
        **problem_responses(403, 404, 416, 503),
    },
)
async def signed_download(
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    session: SessionDep,
    context: ContextDep,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]+$")],
    by: Annotated[uuid.UUID | None, Query(description="the user who asked for it")] = None,
    key: Annotated[uuid.UUID | None, Query(description="the API key it was asked with")] = None,
    range_header: RangeHeader = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=500)] = None,
) -> Response:
    """Download through a signed URL (no credentials); tampered or expired is 403, and so is
    one whose issuer (user or API key) was disabled, revoked or lost documents:read; 404
    once it may not see the document."""
    if by is not None and key is None:
        issuer, kind = by, "user"
    elif key is not None and by is None:
        issuer, kind = key, "api_key"
    else:
        raise BadSignature("a signed URL names exactly one issuer: by (a user) or key")
    secret = signing.signing_key(context)
    signing.verify(
        secret, "GET", document_id, version_id, expires, issuer, kind, signature, time.time()
    )
    found = await service.signed_version(session, context, document_id, version_id, issuer, kind)
    return await file_response(context, found, range_header, if_none_match)
