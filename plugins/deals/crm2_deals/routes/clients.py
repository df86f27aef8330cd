"""`/api/v1/deals/clients` and `/api/v1/deals/contacts` routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from crm2_core.api import (
    APIRouter,
    ContextDep,
    IfMatchDep,
    SessionDep,
    create_route,
    export_route,
    import_routes,
    list_query,
    list_route,
    present,
    query_filters,
    record_routes,
)
from crm2_deals.repository import clients as repo
from crm2_deals.routes.deps import (
    PERMISSIONS,
    DealsWrite,
)
from crm2_deals.schemas.clients import (
    ClientCreate,
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


client_filters = query_filters(repo.ClientFilters)  # the export's
client_query = list_query(repo.ClientFilters, repo.CLIENT_SORTS)


list_route(
    router, "/clients", ClientPublic.model_validate, response_model=ClientPublic,
    permission="deals:read", fetch=service.list_clients, query=client_query,
    name="list_clients",
    doc="Clients the caller may see, filtered and sorted, cursor-paginated.",
)  # fmt: skip
create_route(
    router, "/clients", ClientPublic.model_validate, response_model=ClientPublic,
    permission="deals:write", body=ClientCreate, create=service.create_client,
    location="/clients/{id}", params={"force": (Force, False)}, name="create_client",
    doc="Create a client; an e-mail or tax id already on file is 409 unless ?force=true.",
)  # fmt: skip


export_route(
    router, "/clients/export", permission="deals:export", filters=client_filters,
    sorts=repo.CLIENT_SORTS, export=service.export_clients, columns=service.CLIENT_EXPORT,
    filename="clients", doc="The client list as CSV (same filters as the list), streamed.",
)  # fmt: skip


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
    context: ContextDep,
    force: Force = False,
) -> ClientPublic:
    """Change a client (If-Match required); {"archived": true} archives it."""
    client = await service.update_client(
        session, principal, client_id, if_match, body, context=context, force=force
    )
    return present(response, ClientPublic.model_validate(client))


# -- contacts --------------------------------------------------------------------------


list_route(
    router, "/clients/{client_id}/contacts", ContactPublic.model_validate,
    response_model=ContactPublic, permission="deals:read", fetch=service.list_contacts,
    name="list_contacts", doc="The contacts of a client, oldest first.",
)  # fmt: skip
create_route(
    router, "/clients/{client_id}/contacts", ContactPublic.model_validate,
    response_model=ContactPublic, permission="deals:write", body=ContactCreate,
    create=service.create_contact, location="/contacts/{id}", name="create_contact",
    doc="Add a contact person to a client.",
)  # fmt: skip


record_routes(
    router, "/contacts/{contact_id}", ContactPublic.model_validate, response_model=ContactPublic,
    permissions=PERMISSIONS, get=service.get_contact,
    update=(ContactUpdate, service.update_contact), delete=service.delete_contact,
    docs=("One contact (visible when its client is).", "Change a contact (If-Match required).",
          "Delete a contact."),
)  # fmt: skip
