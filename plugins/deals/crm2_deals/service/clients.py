"""Clients and contacts: ownership, the duplicate check, archiving; emits client events."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm2_core.api import (
    CsvColumns,
    PageParams,
    Records,
    Visibility,
    export_list,
    fold_text,
    insert_together,
    new_row,
    publish,
    publish_row,
    user_emails,
)
from crm2_deals import csv_io
from crm2_deals.errors import DuplicateClient, InUse
from crm2_deals.events import ClientArchived, ClientCreated, ClientUpdated
from crm2_deals.models import Client, ClientEmail, Contact
from crm2_deals.repository import clients as repo
from crm2_deals.schemas.clients import (
    ClientCreate,
    ClientUpdate,
    ContactCreate,
    ContactUpdate,
)
from crm2_deals.service.activities import follow_owner
from crm2_deals.service.handover import carry_along
from crm2_deals.service.owners import owner_for
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext

_NOT_DIGITS = re.compile(r"\D")
# Fields a client update may set, and the ones that may be set to null.
CLIENT_FIELDS = ("kind", "name", "emails", "phones", "tax_id", "address", "tags", "owner_id")
NULLABLE = {"tax_id"}
EXPORT_PAGE_SIZE = 1000
CLIENT_EXPORT = CsvColumns(csv_io.CLIENT_EXPORT_COLUMNS, version=1)


def search_text_for(name: str, emails: Sequence[str], phones: Sequence[str]) -> str:
    """What ``q`` searches: name, e-mails and phones (also digits only), folded as the
    core folds text (``fold_text``: a final sigma, a dotted capital I), as ``q`` is."""
    digits = [_NOT_DIGITS.sub("", p) for p in phones]
    return fold_text(" ".join([name, *emails, *phones, *[d for d in digits if d]]))


async def check_duplicates(
    session: AsyncSession,
    visibility: Visibility,
    emails: Sequence[str],
    tax_id: str | None,
    exclude: uuid.UUID | None = None,
) -> None:
    """409 naming the client when another client the caller sees holds one of the
    e-mails or the tax id.

    Unique per what the caller sees: a client they cannot see (another agent's) is not
    a duplicate to them, as it is in none of their lists. Refusing on it would tell them
    that someone they cannot see has a client with this address or tax id."""
    matches = await repo.clients_matching(session, emails, tax_id, exclude)
    visible = [c for c in matches if visibility.allows(c.owner_id)]
    if not visible:
        return
    first = visible[0]
    raise DuplicateClient(
        f"client {first.name!r} already has this e-mail or tax id; "
        "send ?force=true to create it anyway",
        existing={"id": str(first.id), "name": first.name},
    )


CLIENTS = Records(repo.clients, RULES)
CONTACTS = Records(repo.contacts, RULES)
get_client = CLIENTS.get
get_contact = CONTACTS.get
delete_contact = CONTACTS.delete
list_clients = CLIENTS.lister(repo.list_clients)


async def create_client(
    session: AsyncSession, principal: Principal, data: ClientCreate, *, force: bool = False
) -> Client:
    visibility = RULES.in_session(session, principal)
    owner = await owner_for(session, principal, visibility, data.owner_id)
    if not force:
        await check_duplicates(session, visibility, data.emails, data.tax_id)
    row = new_row(
        Client,
        kind=data.kind,
        name=data.name,
        emails=data.emails,
        phones=data.phones,
        tax_id=data.tax_id,
        address=data.address,
        tags=data.tags,
        owner_id=owner,
        search_text=search_text_for(data.name, data.emails, data.phones),
    )
    client = Client.model_construct(**row.values)  # the client as written
    emails = [new_row(ClientEmail, client_id=client.id, email=e) for e in data.emails]
    event = ClientCreated(name=client.name, kind=client.kind, owner_id=owner)
    record = publish_row(session, event, subject=client.id, actor=principal)
    # the client, its e-mail rows and its event: one statement (one round trip)
    await insert_together(session, [row, *emails, record])
    return client


async def update_client(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    if_match: str,
    data: ClientUpdate,
    *,
    context: AppContext,
    force: bool = False,
) -> Client:
    """Change a client; a new owner takes along the previous owner's deals and policies
    on it unless the previous owner still sees it (``service.handover``)."""
    visibility = RULES.in_session(session, principal)
    client = await CLIENTS.for_update(session, principal, client_id, if_match)
    sent = data.model_dump(exclude_unset=True)
    values = {
        k: v
        for k, v in sent.items()
        if k in (*CLIENT_FIELDS, "archived") and (v is not None or k in NULLABLE)
    }
    if "owner_id" in values:
        values["owner_id"] = await owner_for(
            session, principal, visibility, values["owner_id"], current=client.owner_id
        )
    if not force and ("emails" in values or "tax_id" in values):
        new_emails = [e for e in values.get("emails", []) if e not in client.emails]
        new_tax = values.get("tax_id") if values.get("tax_id") != client.tax_id else None
        await check_duplicates(session, visibility, new_emails, new_tax, exclude=client.id)
    if values.get("owner_id", client.owner_id) != client.owner_id:
        owner = values["owner_id"]
        await carry_along(session, context, principal, client.id, client.owner_id, owner)
        await follow_owner(session, owner, client_id=client.id)
    return await write_update(session, principal, client, values)


async def write_update(
    session: AsyncSession, principal: Principal, client: Client, values: dict[str, Any]
) -> Client:
    """Apply the fields that differ (one version bump) and emit updated and/or archived."""
    changed = {k: v for k, v in values.items() if getattr(client, k) != v}
    previous = client.owner_id if "owner_id" in changed else None
    if {"name", "emails", "phones"} & changed.keys():
        changed["search_text"] = search_text_for(
            changed.get("name", client.name),
            changed.get("emails", client.emails),
            changed.get("phones", client.phones),
        )
    if not await repo.clients.update(session, client, changed):
        return client
    if "emails" in changed:
        await repo.set_emails(session, client.id, changed["emails"])
    flag = changed.pop("archived", None)
    names = sorted(k for k in changed if k != "search_text")
    if flag is False:
        names = sorted([*names, "archived"])
    if names:
        event = ClientUpdated(changed=names, owner_id=client.owner_id, previous_owner_id=previous)
        publish(session, event, subject=client.id, actor=principal)
    if flag is True:
        publish(
            session, ClientArchived(owner_id=client.owner_id), subject=client.id, actor=principal
        )
    return client


async def delete_client(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, if_match: str | None
) -> None:
    client = await CLIENTS.for_update(session, principal, client_id, if_match)
    if await repo.client_in_use(session, client.id):
        raise InUse("the client has deals or policies; archive it instead")
    await repo.clients.delete_if_match(session, client, if_match)


# -- contacts --------------------------------------------------------------------------


async def list_contacts(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, page: PageParams
) -> tuple[list[Any], str | None]:
    client = await get_client(session, principal, client_id)
    return await repo.list_contacts(session, client.id, page)


async def create_contact(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, data: ContactCreate
) -> Contact:
    client = await get_client(session, principal, client_id)
    return await repo.contacts.add(session, Contact(client_id=client.id, **data.model_dump()))


async def update_contact(
    session: AsyncSession,
    principal: Principal,
    contact_id: uuid.UUID,
    if_match: str,
    data: ContactUpdate,
) -> Contact:
    contact = await CONTACTS.for_update(session, principal, contact_id, if_match)
    sent = data.model_dump(exclude_unset=True)
    values = {k: v for k, v in sent.items() if v is not None or k in {"email", "phone"}}
    await repo.contacts.update(session, contact, values)
    return contact


# -- CSV export ------------------------------------------------------------------------


async def _export_rows(session: AsyncSession, items: list[Client]) -> list[list[Any]]:
    owners = await user_emails(session, {c.owner_id for c in items})
    return [
        [
            c.id, c.kind, c.name, c.emails, c.phones, c.tax_id, c.address, c.tags,
            owners.get(c.owner_id), c.archived, c.created_at, c.updated_at,
        ]
        for c in items
    ]  # fmt: skip


def export_clients(
    session_factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    filters: repo.ClientFilters,
    sort: str,
) -> AsyncIterator[str]:
    """The list as CSV chunks, one keyset page at a time, each page in a short session."""
    visibility = RULES.in_session(session_factory, principal)
    return export_list(
        session_factory, CLIENT_EXPORT, repo.list_clients, visibility, filters, sort,
        _export_rows, EXPORT_PAGE_SIZE,
    )  # fmt: skip
