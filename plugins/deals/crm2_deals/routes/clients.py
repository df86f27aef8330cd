"""`/api/v1/deals/clients` and `/api/v1/deals/contacts` routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse

from crm2_core.api import (
    ContextDep,
    IfMatchDep,
    IsoDateTime,
    Page,
    PageDep,
    SessionDep,
    as_utc,
    created,
    csv_response,
    import_routes,
    present,
    record_routes,
)
from crm2_deals.repository import clients as repo
from crm2_deals.routes.deps import (
    PERMISSIONS,
    DealsExport,
    DealsRead,
    DealsWrite,
)
from crm2_deals.schemas.clients import (
    ClientCreate,
    ClientKind,
    ClientPublic,
    ClientUpdate,
    ContactCreate,
    ContactPublic,
    ContactUpdate,
)
from crm2_deals.service import clients as service
from crm2_deals.service.client_import import CLIENT_IMPORT

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

Force = Annotated[bool, Query(description="create or save even if the e-mail or tax id exists")]
ClientSort = Annotated[str, Depends(repo.CLIENT_SORTS.dependency)]


async def client_filters(
    owner: Annotated[uuid.UUID | None, Query(description="owner's user id")] = None,
    q: Annotated[str | None, Query(max_length=200, description="in name, e-mails, phones")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    kind: ClientKind | None = None,
    archived: Annotated[bool | None, Query(description="omit for both")] = None,
    updated_since: IsoDateTime | None = None,
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


@router.get("/clients", response_model=Page[ClientPublic])
async def list_clients(
    principal: DealsRead,
    session: SessionDep,
    page: PageDep,
    filters: ClientFiltersDep,
    sort: ClientSort,
) -> Page[ClientPublic]:
    """Clients the caller may see, filtered and sorted, cursor-paginated."""
    rows, cursor = await service.list_clients(session, principal, filters, sort, page)
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
    location = f"/api/v1/deals/clients/{client.id}"
    return created(response, location, ClientPublic.model_validate(client))


@router.get("/clients/export", response_class=StreamingResponse)
async def export_clients(
    principal: DealsExport,
    context: ContextDep,
    filters: ClientFiltersDep,
    sort: ClientSort,
) -> StreamingResponse:
    """The client list as CSV (same filters as the list), streamed."""
    chunks = service.export_clients(context.session_factory, principal, filters, sort)
    return csv_response(chunks, "clients", service.CLIENT_EXPORT)


import_routes(
    router, "/clients/import", CLIENT_IMPORT, permission="deals:import",
    max_rows=lambda context: int(context.plugin_settings("deals").import_max_rows),
    background_rows=lambda context: int(context.plugin_settings("deals").import_background_rows),
    doc="Upsert clients from CSV by e-mail or tax id; answers a per-row report.",
)  # fmt: skip


record_routes(
    router, "/clients/{client_id}", ClientPublic.model_validate, response_model=ClientPublic,
    permissions=PERMISSIONS, get=service.get_client, delete=service.delete_client,
    docs=("One client; its ETag is what a PATCH sends as If-Match.", "",
          "Delete a client without deals or policies (409 otherwise: archive it)."),
)  # fmt: skip


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
    return present(response, ClientPublic.model_validate(client))


# -- contacts --------------------------------------------------------------------------


@router.get("/clients/{client_id}/contacts", response_model=Page[ContactPublic])
async def list_contacts(
    client_id: uuid.UUID, principal: DealsRead, session: SessionDep, page: PageDep
) -> Page[ContactPublic]:
    """The contacts of a client, oldest first."""
    rows, cursor = await service.list_contacts(session, principal, client_id, page)
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
    location = f"/api/v1/deals/contacts/{contact.id}"
    return created(response, location, ContactPublic.model_validate(contact))


record_routes(
    router, "/contacts/{contact_id}", ContactPublic.model_validate, response_model=ContactPublic,
    permissions=PERMISSIONS, get=service.get_contact,
    update=(ContactUpdate, service.update_contact), delete=service.delete_contact,
    docs=("One contact (visible when its client is).", "Change a contact (If-Match required).",
          "Delete a contact."),
)  # fmt: skip
