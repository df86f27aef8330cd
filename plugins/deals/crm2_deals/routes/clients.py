"""`/api/v1/deals/clients` and `/api/v1/deals/contacts` routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from crm2_core.api import ContextDep, IfMatchDep, Page, PageDep, SessionDep, etag_for, require
from crm2_deals import csv_io
from crm2_deals.repository import clients as repo
from crm2_deals.schemas.clients import (
    ClientCreate,
    ClientKind,
    ClientPublic,
    ClientUpdate,
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    ImportReport,
)
from crm2_deals.service import clients as service
from crm2_deals.visibility import Visibility
from crm2_hookspecs import Principal

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

DealsRead = Annotated[Principal, Depends(require("deals:read"))]
DealsWrite = Annotated[Principal, Depends(require("deals:write"))]
DealsDelete = Annotated[Principal, Depends(require("deals:delete"))]
DealsExport = Annotated[Principal, Depends(require("deals:export"))]
DealsImport = Annotated[Principal, Depends(require("deals:import"))]
Force = Annotated[bool, Query(description="create or save even if the e-mail or tax id exists")]
ClientSort = Annotated[
    str,
    Query(pattern=r"^-?(name|created_at|updated_at)$", description="a column, '-' for descending"),
]


def as_utc(value: datetime | None) -> datetime | None:
    """A query-string time without a zone is read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def client_filters(
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    q: Annotated[str | None, Query(max_length=200, description="in name, e-mails, phones")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    kind: ClientKind | None = None,
    archived: Annotated[bool | None, Query(description="omit for both")] = None,
    updated_since: datetime | None = None,
) -> repo.ClientFilters:
    return repo.ClientFilters(
        owner=owner,
        q=q,
        tag=tag,
        kind=kind,
        archived=archived,
        updated_since=as_utc(updated_since),
    )


ClientFiltersDep = Annotated[repo.ClientFilters, Depends(client_filters)]


def _public(client: object, response: Response) -> ClientPublic:
    public = ClientPublic.model_validate(client)
    response.headers["ETag"] = etag_for(public.version)
    return public


@router.get("/clients", response_model=Page[ClientPublic])
async def list_clients(
    principal: DealsRead,
    session: SessionDep,
    page: PageDep,
    filters: ClientFiltersDep,
    sort: ClientSort = "-updated_at",
) -> Page[ClientPublic]:
    """Clients the caller may see, filtered and sorted, cursor-paginated."""
    visibility = Visibility.of(principal)
    rows, cursor = await repo.list_clients(session, visibility, filters, sort, page)
    return Page(items=[ClientPublic.model_validate(c) for c in rows], next_cursor=cursor)


@router.post("/clients", response_model=ClientPublic, status_code=status.HTTP_201_CREATED)
async def create_client(
    body: ClientCreate,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    force: Force = False,
) -> ClientPublic:
    """Create a client; an e-mail or tax id already on file is 409 unless ?force=true."""
    client = await service.create_client(session, principal, body, force=force)
    response.headers["Location"] = f"/api/v1/deals/clients/{client.id}"
    return _public(client, response)


@router.get("/clients/export", response_class=StreamingResponse)
async def export_clients(
    principal: DealsExport,
    context: ContextDep,
    filters: ClientFiltersDep,
    sort: ClientSort = "-updated_at",
) -> StreamingResponse:
    """The client list as CSV (same filters as the list), streamed."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    chunks = service.export_clients(
        context.session_factory, Visibility.of(principal), filters, sort
    )
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="clients-{stamp}.csv"'},
    )


@router.post("/clients/import", response_model=ImportReport)
async def import_clients(
    principal: DealsImport,
    session: SessionDep,
    context: ContextDep,
    file: Annotated[UploadFile, File(description="CSV: " + ",".join(csv_io.CLIENT_IMPORT_COLUMNS))],
    dry_run: Annotated[bool, Query(description="report only, write nothing")] = False,
    partial: Annotated[
        bool, Query(description="write the good rows of a file with errors")
    ] = False,
) -> ImportReport:
    """Upsert clients from CSV by e-mail or tax id; answers a per-row report."""
    max_rows: int = context.plugin_settings("deals").import_max_rows
    rows = csv_io.parse_rows(await file.read(), max_rows)
    return await service.import_clients(session, principal, rows, dry_run=dry_run, partial=partial)


@router.get("/clients/{client_id}", response_model=ClientPublic)
async def get_client(
    client_id: uuid.UUID, principal: DealsRead, session: SessionDep, response: Response
) -> ClientPublic:
    """One client; its ETag is what a PATCH sends as If-Match."""
    client = await service.get_client(session, Visibility.of(principal), client_id)
    return _public(client, response)


@router.patch("/clients/{client_id}", response_model=ClientPublic)
async def update_client(
    client_id: uuid.UUID,
    body: ClientUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
    force: Force = False,
) -> ClientPublic:
    """Change a client (If-Match required); {"archived": true} archives it."""
    client = await service.update_client(session, principal, client_id, if_match, body, force=force)
    return _public(client, response)


@router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(
    client_id: uuid.UUID, principal: DealsDelete, session: SessionDep
) -> Response:
    """Delete a client without deals or policies (409 otherwise: archive it)."""
    await service.delete_client(session, principal, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- contacts --------------------------------------------------------------------------


@router.get("/clients/{client_id}/contacts", response_model=Page[ContactPublic])
async def list_contacts(
    client_id: uuid.UUID, principal: DealsRead, session: SessionDep, page: PageDep
) -> Page[ContactPublic]:
    """The contacts of a client, oldest first."""
    client = await service.get_client(session, Visibility.of(principal), client_id)
    rows, cursor = await repo.list_contacts(session, client.id, page)
    return Page(items=[ContactPublic.model_validate(c) for c in rows], next_cursor=cursor)


@router.post(
    "/clients/{client_id}/contacts",
    response_model=ContactPublic,
    status_code=status.HTTP_201_CREATED,
)
async def create_contact(
    client_id: uuid.UUID,
    body: ContactCreate,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
) -> ContactPublic:
    """Add a contact person to a client."""
    contact = await service.create_contact(session, principal, client_id, body)
    response.headers["Location"] = f"/api/v1/deals/contacts/{contact.id}"
    response.headers["ETag"] = etag_for(contact.version)
    return ContactPublic.model_validate(contact)


@router.get("/contacts/{contact_id}", response_model=ContactPublic)
async def get_contact(
    contact_id: uuid.UUID, principal: DealsRead, session: SessionDep, response: Response
) -> ContactPublic:
    """One contact (visible when its client is)."""
    contact = await service.get_contact(session, Visibility.of(principal), contact_id)
    response.headers["ETag"] = etag_for(contact.version)
    return ContactPublic.model_validate(contact)


@router.patch("/contacts/{contact_id}", response_model=ContactPublic)
async def update_contact(
    contact_id: uuid.UUID,
    body: ContactUpdate,
    if_match: IfMatchDep,
    principal: DealsWrite,
    session: SessionDep,
    response: Response,
) -> ContactPublic:
    """Change a contact (If-Match required)."""
    contact = await service.update_contact(session, principal, contact_id, if_match, body)
    response.headers["ETag"] = etag_for(contact.version)
    return ContactPublic.model_validate(contact)


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_contact(
    contact_id: uuid.UUID, principal: DealsDelete, session: SessionDep
) -> Response:
    """Delete a contact."""
    await service.delete_contact(session, principal, contact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
