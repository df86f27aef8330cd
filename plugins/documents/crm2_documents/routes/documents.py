"""`/api/v1/documents/documents`: metadata CRUD, soft delete and restore, versions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response, status
from fastapi import Path as PathParam

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    ListQuery,
    OptionalIfMatch,
    Page,
    PageDep,
    SessionDep,
    created,
    list_query,
    page_response,
    present,
)
from crm2_documents.repository import documents as repo
from crm2_documents.routes.deps import (
    DocumentsDelete,
    DocumentsRead,
    DocumentsWrite,
)
from crm2_documents.schemas.documents import (
    DocumentCreate,
    DocumentPublic,
    DocumentUpdate,
    VersionPublic,
)
from crm2_documents.service import documents as service
from crm2_documents.service import versions as versions_service

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


document_query = list_query(repo.DocumentFilters, repo.DOCUMENT_SORTS)
DocumentListQuery = Annotated[ListQuery[repo.DocumentFilters], Depends(document_query)]


def _retention(context: ContextDep) -> int:
    days: int = context.plugin_settings("documents").retention_days
    return days


@router.get("/documents", response_model=Page[DocumentPublic])
async def list_documents(
    principal: DocumentsRead,
    session: SessionDep,
    context: ContextDep,
    query: DocumentListQuery,
) -> Response:
    """Documents the caller may see: those of records they may see (all with all_records)."""
    rows, cursor = await repo.list_documents(
        session, service.visibility(session, principal), query.filters, query.sort, query.page
    )
    current = await service.current_versions(session, rows)
    days = _retention(context)
    items = [service.public_values(d, current.get(d.id), days) for d in rows]
    return page_response(DocumentPublic, items, cursor)


@router.post("/documents", response_model=DocumentPublic, status_code=status.HTTP_201_CREATED)
async def create_document(
    body: DocumentCreate,
    principal: DocumentsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> DocumentPublic:
    """Create a document's metadata (upload its file to …/versions); honours Idempotency-Key."""
    document = await service.create_document(session, context, principal, body)
    location = f"/api/v1/documents/documents/{document.id}"
    return created(response, location, service.public(document))


@router.get("/documents/{document_id}", response_model=DocumentPublic)
async def get_document(
    document_id: uuid.UUID,
    principal: DocumentsRead,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    deleted: Annotated[bool, Query(description="open a deleted document")] = False,
) -> DocumentPublic:
    """One document with its newest version; its ETag is what a PATCH sends as If-Match."""
    document = await service.get_document(session, principal, document_id, deleted=deleted)
    current = await service.current_versions(session, [document])
    return present(
        response, service.public(document, current.get(document.id), _retention(context))
    )


@router.patch("/documents/{document_id}", response_model=DocumentPublic)
async def update_document(
    document_id: uuid.UUID,
    body: DocumentUpdate,
    if_match: IfMatchDep,
    principal: DocumentsWrite,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> DocumentPublic:
    """Change title, kind, tags or link (If-Match required); ``link: null`` unlinks."""
    document = await service.update_document(
        session, context, principal, document_id, if_match, body
    )
    current = await service.current_versions(session, [document])
    return present(response, service.public(document, current.get(document.id)))


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    document_id: uuid.UUID,
    principal: DocumentsDelete,
    session: SessionDep,
    if_match: OptionalIfMatch = None,
) -> Response:
    """Delete (soft): restorable for CRM2_DOCUMENTS_RETENTION_DAYS, then purged with its files."""
    await service.delete_document(session, principal, document_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/documents/{document_id}/restore", response_model=DocumentPublic)
async def restore_document(
    document_id: uuid.UUID,
    principal: DocumentsDelete,
    session: SessionDep,
    context: ContextDep,
    response: Response,
    if_match: OptionalIfMatch = None,
) -> DocumentPublic:
    """Bring back a deleted document before its ``purge_after`` (409 after it)."""
    document = await service.restore_document(
        session, principal, document_id, if_match, _retention(context)
    )
    current = await service.current_versions(session, [document])
    return present(response, service.public(document, current.get(document.id)))


@router.get("/documents/{document_id}/versions", response_model=Page[VersionPublic])
async def list_versions(
    document_id: uuid.UUID, principal: DocumentsRead, session: SessionDep, page: PageDep
) -> Response:
    """The document's versions, newest first, a page at a time (``next_cursor``)."""
    rows, cursor = await versions_service.list_versions(session, principal, document_id, page)
    return page_response(VersionPublic, rows, cursor)


@router.get("/documents/{document_id}/versions/{number}", response_model=VersionPublic)
async def get_version(
    document_id: uuid.UUID,
    number: Annotated[int, PathParam(ge=1, le=1_000_000)],
    principal: DocumentsRead,
    session: SessionDep,
) -> VersionPublic:
    """One version's metadata (size, SHA-256, content type, storage state)."""
    _, version = await versions_service.get_version(session, principal, document_id, number)
    return VersionPublic.model_validate(version)
