"""Every query on clients, their e-mails and contacts, with the visibility rule applied.

Also the list helpers the other repositories share: sort keys and cursor checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import OrderKey, PageParams, User, paginate, sort_order
from crm2_deals.models import Client, ClientEmail, Contact, Deal, Policy
from crm2_deals.visibility import Visibility

# -- shared list helpers ---------------------------------------------------------------


def json_list_contains(session: AsyncSession, json_column: Any, value: str) -> Any:
    """``value`` is an element of a JSON array column, on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(json_column, postgresql.JSONB).contains([value])
    elements = func.json_each(json_column).table_valued("value")
    return exists(select(1).select_from(elements).where(column("value") == value))


# -- clients ---------------------------------------------------------------------------

CLIENT_SORTS: dict[str, Any] = {
    "name": Client.name,
    "created_at": Client.created_at,
    "updated_at": Client.updated_at,
}


@dataclass(frozen=True)
class ClientFilters:
    owner: uuid.UUID | None = None
    q: str | None = None
    tag: str | None = None
    kind: str | None = None
    archived: bool | None = None
    updated_since: datetime | None = None


def client_select(session: AsyncSession, visibility: Visibility, f: ClientFilters) -> Select[Any]:
    stmt = select(Client).where(visibility.where(Client.owner_id))
    if f.owner is not None:
        stmt = stmt.where(Client.owner_id == f.owner)
    if f.q:
        stmt = stmt.where(Client.search_text.contains(f.q.strip().lower(), autoescape=True))
    if f.tag:
        stmt = stmt.where(json_list_contains(session, Client.tags, f.tag))
    if f.kind is not None:
        stmt = stmt.where(Client.kind == f.kind)
    if f.archived is not None:
        stmt = stmt.where(Client.archived == f.archived)
    if f.updated_since is not None:
        stmt = stmt.where(Client.updated_at >= f.updated_since)
    return stmt


async def list_clients(
    session: AsyncSession,
    visibility: Visibility,
    filters: ClientFilters,
    sort: str,
    page: PageParams,
) -> tuple[list[Client], str | None]:
    keys = sort_order(sort, CLIENT_SORTS, Client.id)
    return await paginate(session, client_select(session, visibility, filters), keys, page)


async def get_client(
    session: AsyncSession, visibility: Visibility, client_id: uuid.UUID
) -> Client | None:
    stmt = select(Client).where(Client.id == client_id, visibility.where(Client.owner_id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def clients_matching(
    session: AsyncSession,
    emails: Iterable[str],
    tax_id: str | None,
    exclude: uuid.UUID | None = None,
) -> list[Client]:
    """Every client (whoever owns it) holding one of ``emails`` or ``tax_id``."""
    wanted = list(emails)
    clauses = []
    if wanted:
        clauses.append(
            Client.id.in_(select(ClientEmail.client_id).where(ClientEmail.email.in_(wanted)))
        )
    if tax_id:
        clauses.append(Client.tax_id == tax_id)
    if not clauses:
        return []
    stmt = select(Client).where(or_(*clauses))
    if exclude is not None:
        stmt = stmt.where(Client.id != exclude)
    return list((await session.execute(stmt.order_by(Client.created_at, Client.id))).scalars())


async def set_emails(session: AsyncSession, client_id: uuid.UUID, emails: Sequence[str]) -> None:
    """Make the client's ``deals_client_email`` rows exactly ``emails``."""
    await session.execute(delete(ClientEmail).where(ClientEmail.client_id == client_id))
    if emails:
        await session.execute(
            insert(ClientEmail), [{"client_id": client_id, "email": e} for e in emails]
        )


async def client_in_use(session: AsyncSession, client_id: uuid.UUID) -> bool:
    deals = exists().where(Deal.client_id == client_id)
    policies = exists().where(Policy.client_id == client_id)
    return bool((await session.execute(select(deals | policies))).scalar())


async def delete_client(session: AsyncSession, client_id: uuid.UUID) -> None:
    await session.execute(delete(Client).where(Client.id == client_id))


# -- owners (core users) ---------------------------------------------------------------


async def user_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    stmt = select(exists().where(User.id == user_id, User.is_active.is_(True)))
    return bool((await session.execute(stmt)).scalar())


async def user_ids_by_email(session: AsyncSession, emails: Iterable[str]) -> dict[str, uuid.UUID]:
    wanted = {e.lower() for e in emails}
    if not wanted:
        return {}
    stmt = select(func.lower(User.email), User.id).where(func.lower(User.email).in_(wanted))
    return {email: user_id for email, user_id in (await session.execute(stmt)).all()}


async def user_emails(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = select(User.id, User.email).where(User.id.in_(wanted))
    return {user_id: email for user_id, email in (await session.execute(stmt)).all()}


# -- contacts (visible through their client) -------------------------------------------


async def list_contacts(
    session: AsyncSession, client_id: uuid.UUID, page: PageParams
) -> tuple[list[Contact], str | None]:
    """The contacts of a client the caller already proved they can see."""
    stmt = select(Contact).where(Contact.client_id == client_id)
    keys = [OrderKey(Contact.created_at), OrderKey(Contact.id)]
    return await paginate(session, stmt, keys, page)


async def get_contact(
    session: AsyncSession, visibility: Visibility, contact_id: uuid.UUID
) -> Contact | None:
    stmt = (
        select(Contact)
        .join(Client, Client.id == Contact.client_id)
        .where(Contact.id == contact_id, visibility.where(Client.owner_id))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def delete_contact(session: AsyncSession, contact_id: uuid.UUID) -> None:
    await session.execute(delete(Contact).where(Contact.id == contact_id))
