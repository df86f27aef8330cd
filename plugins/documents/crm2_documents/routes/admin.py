"""`/api/v1/documents/kinds`, `/backends` and transfers: what administrators manage."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Response, status

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    SessionDep,
    created,
    never_answers,
    present,
)
from crm2_documents.routes.deps import DocumentsAdmin, DocumentsRead
from crm2_documents.schemas.backends import PurgeBlocked, StorageBackendStatus, StorageStatus
from crm2_documents.schemas.documents import KindKey, TransferRequest, VersionPublic
from crm2_documents.schemas.kinds import KindCreate, KindPublic, KindUpdate
from crm2_documents.service import kinds as service
from crm2_documents.service import retention, transfers
from crm2_documents.storage.registry import storage_of

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


@router.get("/kinds", response_model=list[KindPublic])
async def list_kinds(principal: DocumentsRead, session: SessionDep) -> list[KindPublic]:
    """Every document kind with the content types it accepts."""
    from crm2_documents.repository.kinds import all_kinds

    return [KindPublic.model_validate(k) for k in await all_kinds(session)]


@router.post("/kinds", response_model=KindPublic, status_code=status.HTTP_201_CREATED)
async def create_kind(
    body: KindCreate, principal: DocumentsAdmin, session: SessionDep, response: Response
) -> KindPublic:
    """Add a document kind (admin); honours Idempotency-Key."""
    kind = await service.create_kind(session, body)
    return created(response, f"/api/v1/documents/kinds/{kind.key}", KindPublic.model_validate(kind))


@router.get("/kinds/{key}", response_model=KindPublic)
async def get_kind(
    key: KindKey, principal: DocumentsRead, session: SessionDep, response: Response
) -> KindPublic:
    """One document kind."""
    return present(response, KindPublic.model_validate(await service.get_kind(session, key)))


@router.patch("/kinds/{key}", response_model=KindPublic)
async def update_kind(
    key: KindKey,
    body: KindUpdate,
    if_match: IfMatchDep,
    principal: DocumentsAdmin,
    session: SessionDep,
    response: Response,
) -> KindPublic:
    """Rename, change the accepted types or (de)activate a kind (admin, If-Match required)."""
    kind = await service.update_kind(session, key, if_match, body)
    return present(response, KindPublic.model_validate(kind))


@router.get("/backends", response_model=StorageStatus, openapi_extra=never_answers(404))
async def backends_status(
    principal: DocumentsAdmin, session: SessionDep, context: ContextDep
) -> StorageStatus:
    """Each configured storage backend and whether it answers, and the deleted documents
    whose purge waits on a backend that is no longer configured (admin)."""
    storage = storage_of(context)
    found: list[StorageBackendStatus] = []
    for name, backend in sorted(storage.backends.items()):
        try:
            detail = dict(await backend.status())
            ok = True
        except Exception as exc:
            detail, ok = {"error": f"{type(exc).__name__}: {exc}"[:300]}, False
        found.append(StorageBackendStatus(name=name, ok=ok, detail=detail))
    blocked = await retention.blocked_purges(session, context)
    return StorageStatus(
        target=storage.target,
        upload=storage.upload,
        backends=found,
        purge_blocked=[PurgeBlocked(backend=b, documents=n) for b, n in sorted(blocked.items())],
    )


@router.post(
    "/documents/{document_id}/versions/{number}/transfer",
    response_model=VersionPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {
            "description": "The version's file is on that backend already: nothing is "
            "queued, the version as it is",
            "model": VersionPublic,
        },
        202: {
            "description": "Accepted: the move is queued; follow Location until `state` "
            "is no longer `transferring`",
            "headers": {
                "Location": {
                    "description": "the version (GET …/versions/{number}): its `state` goes "
                    "transferring → stored (moved) | failed (still where it was)",
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
async def transfer_version(
    document_id: uuid.UUID,
    number: Annotated[int, PathParam(ge=1, le=1_000_000)],
    body: TransferRequest,
    principal: DocumentsAdmin,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> VersionPublic:
    """Queue a version's file for a move to another backend (admin); state: transferring.

    Follow ``Location`` (the version) until its ``state`` is ``stored`` or ``failed``.
    A version already on that backend is 200 with nothing queued."""
    version, queued = await transfers.request(
        session, context, principal, document_id, number, body.backend
    )
    if not queued:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/documents/documents/{document_id}/versions/{number}"
    return VersionPublic.model_validate(version)
