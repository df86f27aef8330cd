"""Client and contact queries beyond the kit's: filters, the duplicate check, e-mail rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import Exists, Table, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import (
    Filter,
    Filtered,
    IsoDateTime,
    OrderKey,
    PageParams,
    Repository,
    Sorts,
    Visibility,
    at_least,
    eq,
    execute_in_session,
    fold_text,
    in_values,
    insert_rows,
    json_list_contains,
    new_id,
    utcnow,
)
from crm2_deals.errors import ClientNotFound, ContactNotFound
from crm2_deals.models import Client, ClientEmail, Contact, Deal, Policy
from crm2_deals.schemas.clients import ClientKind

CLIENT_TABLE: Table = Client.__table__  # type: ignore[attr-defined]
EMAIL_TABLE: Table = ClientEmail.__table__  # type: ignore[attr-defined]
CLIENT_SORTS = Sorts(
    {
        "name": col(Client.name),
        "created_at": col(Client.created_at),
        "updated_at": col(Client.updated_at),
    },
    id_column=col(Client.id),
    default="-updated_at",
)
clients = Repository(Client, ClientNotFound, owner=col(Client.owner_id), sorts=CLIENT_SORTS)
# A contact is visible when its client is.
contacts = Repository(
    Contact,
    ContactNotFound,
    owner=col(Client.owner_id),
    join=(Client, col(Client.id) == col(Contact.client_id)),
)


@dataclass(frozen=True)
class ClientFilters:
    """The list's (and export's) query parameters, declared once (``query_filters``)."""

    owner: Annotated[uuid.UUID | None, Filter("owner's user id")] = None
    q: Annotated[str | None, Filter("in name, e-mails, phones", max_length=200)] = None
    tag: Annotated[str | None, Filter(max_length=64)] = None
    kind: ClientKind | None = None
    archived: Annotated[bool | None, Filter("omit for both")] = None
    updated_since: IsoDateTime | None = None


def client_select(session: AsyncSession, visibility: Visibility, f: ClientFilters) -> Filtered:
    q = fold_text(f.q.strip()) if f.q else None  # as the stored search_text is folded
    return clients.filtered(
        visibility,
        eq(col(Client.owner_id), f.owner),
        col(Client.search_text).contains(q, autoescape=True) if q else None,
        json_list_contains(session, col(Client.tags), f.tag or None),
        eq(col(Client.kind), f.kind),
        eq(col(Client.archived), f.archived),
        at_least(col(Client.updated_at), f.updated_since),
    )


async def list_clients(
    session: AsyncSession,
    visibility: Visibility,
    filters: ClientFilters,
    sort: str,
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """A page of plain rows (``page_rows``): the list and its export only read them."""
    stmt = client_select(session, visibility, filters)
    return await clients.page_rows(session, stmt, page, sort=sort)


@dataclass(frozen=True, slots=True)
class ClientMatch:
    """What the duplicate check tells of a client holding an e-mail or tax id."""

    id: uuid.UUID
    name: str
    owner_id: uuid.UUID


async def clients_matching(
    session: AsyncSession,
    emails: Iterable[str],
    tax_id: str | None,
    exclude: uuid.UUID | None = None,
) -> list[ClientMatch]:
    """Every client (whoever owns it) holding one of ``emails`` or ``tax_id``, oldest
    first. A read only: before a create's write it goes without ``BEGIN``."""
    wanted = list(emails)
    clauses: list[Any] = []
    if wanted:
        clauses.append(
            col(Client.id).in_(
                select(col(ClientEmail.client_id)).where(
                    in_values(col(ClientEmail.email), wanted, session.get_bind().dialect.name)
                )
            )
        )
    if tax_id:
        clauses.append(col(Client.tax_id) == tax_id)
    if not clauses:
        return []
    stmt = select(col(Client.id), col(Client.name), col(Client.owner_id)).where(or_(*clauses))
    if exclude is not None:
        stmt = stmt.where(col(Client.id) != exclude)
    stmt = stmt.order_by(col(Client.created_at), col(Client.id))
    return [ClientMatch(*row) for row in await execute_in_session(session, stmt, reads_only=True)]


@dataclass
class NewClient:
    """A client an import batch will insert (one multi-row INSERT, no ORM object)."""

    kind: str
    name: str
    emails: list[str]
    phones: list[str]
    tax_id: str | None
    address: str
    tags: list[str]
    owner_id: uuid.UUID
    search_text: str
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "emails": self.emails,
            "phones": self.phones, "tax_id": self.tax_id, "address": self.address,
            "tags": self.tags, "owner_id": self.owner_id, "search_text": self.search_text,
            "created_at": self.created_at, "updated_at": self.created_at, "archived": False,
            "version": 1,
        }  # fmt: skip


class ClientIndex:
    """The clients holding some e-mails or tax ids, read once for a batch of import rows.

    Rows add the clients they create or change, so a later row of the same batch
    finds them as the per-row query did. Read as committed now (``populate_existing``):
    a batch reads it again once it holds its clients' locks.
    """

    def __init__(self) -> None:
        self.by_email: dict[str, dict[uuid.UUID, Client | NewClient]] = {}
        self.by_tax_id: dict[str, dict[uuid.UUID, Client | NewClient]] = {}

    @classmethod
    async def load(
        cls, session: AsyncSession, emails: Iterable[str], tax_ids: Iterable[str]
    ) -> ClientIndex:
        index = cls()
        wanted, taxes = list(emails), list(tax_ids)
        dialect = session.get_bind().dialect.name
        if wanted:
            stmt = (
                select(col(ClientEmail.email), Client)
                .join(Client, col(Client.id) == col(ClientEmail.client_id))
                .where(in_values(col(ClientEmail.email), wanted, dialect))
                .execution_options(populate_existing=True)
            )
            for email, client in (await session.execute(stmt)).all():
                index.by_email.setdefault(email, {})[client.id] = client
        if taxes:
            stmt_tax = (
                select(Client)
                .where(in_values(col(Client.tax_id), taxes, dialect))
                .execution_options(populate_existing=True)
            )
            for client in (await session.execute(stmt_tax)).scalars():
                index.add(client, emails=False)
        return index

    def add(self, client: Client | NewClient, *, emails: bool = True) -> None:
        if emails:
            for email in client.emails:
                self.by_email.setdefault(email, {})[client.id] = client
        if client.tax_id:
            self.by_tax_id.setdefault(client.tax_id, {})[client.id] = client

    def visible(self, visibility: Visibility) -> list[uuid.UUID]:
        """The stored clients read (not those a batch creates) the visibility allows."""
        found = {
            c.id
            for by in (self.by_email, self.by_tax_id)
            for clients in by.values()
            for c in clients.values()
            if isinstance(c, Client) and visibility.allows(c.owner_id)
        }
        return sorted(found)

    def matching(self, emails: Iterable[str], tax_id: str | None) -> list[Client | NewClient]:
        """Every client holding one of ``emails`` or ``tax_id``, oldest first."""
        found: dict[uuid.UUID, Client | NewClient] = {}
        for email in emails:
            found.update(self.by_email.get(email, {}))
        if tax_id:
            found.update(self.by_tax_id.get(tax_id, {}))
        return sorted(found.values(), key=lambda c: (c.created_at, c.id))


async def insert_clients(session: AsyncSession, new: Sequence[NewClient]) -> None:
    """The clients and their e-mail rows, each table at once (a COPY on PostgreSQL)."""
    await insert_rows(session, CLIENT_TABLE, [c.row() for c in new])
    emails = [{"client_id": c.id, "email": e} for c in new for e in c.emails]
    await insert_rows(session, EMAIL_TABLE, emails)


async def set_emails(session: AsyncSession, client_id: uuid.UUID, emails: Sequence[str]) -> None:
    """Make the client's ``deals_client_email`` rows exactly ``emails``."""
    await session.execute(delete(ClientEmail).where(col(ClientEmail.client_id) == client_id))
    if emails:
        await session.execute(
            insert(ClientEmail), [{"client_id": client_id, "email": e} for e in emails]
        )


async def client_exists(session: AsyncSession, client_id: uuid.UUID) -> bool:
    """Is the client still there (a failed insert asking why)?"""
    stmt = select(exists().where(col(Client.id) == client_id))
    return bool((await session.execute(stmt)).scalar())


async def client_in_use(session: AsyncSession, client_id: uuid.UUID) -> bool:
    deals = exists().where(col(Deal.client_id) == client_id)
    policies = exists().where(col(Policy.client_id) == client_id)
    return bool((await session.execute(select(deals | policies))).scalar())


async def list_contacts(
    session: AsyncSession, client_id: uuid.UUID, page: PageParams
) -> tuple[list[Any], str | None]:
    """The contacts of a client the caller already proved they can see, as plain rows."""
    stmt = select(Contact).where(col(Contact.client_id) == client_id)
    keys = [OrderKey(col(Contact.created_at)), OrderKey(col(Contact.id))]
    return await contacts.page_rows(session, stmt, page, keys=keys)


# A client's owner is what a deal, policy or activity written on it checks (its owner
# must see the client): such a write reads the client share-locked to its commit
# (PostgreSQL ``FOR SHARE``; SQLite's writers take turns already), and a hand-over
# locks the client (``lock_for_handover``) before it moves the previous owner's
# records. Either the write commits first and the hand-over then finds (and moves)
# what it wrote, or the write waits and then reads the new owner. Always the client
# before the deal or policy: one order for every locker, no deadlock.


async def shared_client(
    session: AsyncSession, visibility: Visibility, client_id: uuid.UUID
) -> Client | None:
    """The visible client, share-locked to the commit (see above); ``None``: not visible."""
    stmt = (
        clients.visible(visibility)
        .where(col(Client.id) == client_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    client: Client | None = (await session.execute(stmt)).scalar_one_or_none()
    return client


async def shared_client_or_404(
    session: AsyncSession, visibility: Visibility, client_id: uuid.UUID
) -> Client:
    client = await shared_client(session, visibility, client_id)
    if client is None:
        raise clients.not_found(f"no client {client_id}")
    return client


_OPEN_EXISTS: dict[tuple[bool, bool], Exists] = {}


def visible_open(
    visibility: Visibility, client_id: uuid.UUID, *, shared: bool = False
) -> tuple[Exists, dict[str, Any]]:
    """``clients.visible_exists`` of a client not archived (one a new deal may go on),
    with ``shared`` share-locked to the commit (see above): for a create's one
    statement, the lock costs no round trip. Built once per kind of visibility, with
    the same parameters, so statements embedding it are cached."""
    _, params = clients.visible_exists(visibility, client_id)
    restricted = len(params) > 1
    clause = _OPEN_EXISTS.get((restricted, shared))
    if clause is None:
        names = sorted(params, key=lambda name: name.endswith("_owner"))
        stmt = select(col(Client.id)).where(
            col(Client.id) == bindparam(names[0]), col(Client.archived).is_(False)
        )
        if restricted:
            stmt = stmt.where(col(Client.owner_id) == bindparam(names[1]))
        if shared:
            stmt = stmt.with_for_update(read=True)
        clause = _OPEN_EXISTS[(restricted, shared)] = stmt.exists()
    return clause, params


async def lock_for_handover(session: AsyncSession, client_id: uuid.UUID) -> None:
    """Lock the client about to change owner (PostgreSQL ``FOR NO KEY UPDATE``, as its
    ``UPDATE`` will) before its records move: see above."""
    stmt = select(col(Client.id)).where(col(Client.id) == client_id)
    await session.execute(stmt.with_for_update(key_share=True))


async def lock_for_import(session: AsyncSession, client_ids: Sequence[uuid.UUID]) -> None:
    """Lock the clients an import batch may write (in id order, ``FOR NO KEY UPDATE``)
    before it writes anything: see above. Read again under the lock, as the batch
    writes what it read."""
    if not client_ids:
        return
    stmt = (
        select(Client)
        .where(in_values(col(Client.id), client_ids, session.get_bind().dialect.name))
        .order_by(col(Client.id))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    await session.execute(stmt)


async def lock_owned_by(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Lock every client of ``owner_id`` (in id order) before a user's hand-over."""
    stmt = select(col(Client.id)).where(col(Client.owner_id) == owner_id)
    await session.execute(stmt.order_by(col(Client.id)).with_for_update(key_share=True))


async def client_owner(session: AsyncSession, client_id: uuid.UUID) -> uuid.UUID:
    """Who owns the client (a deal's or policy's, already found visible), share-locked
    to the commit (see above)."""
    stmt = (
        select(col(Client.owner_id)).where(col(Client.id) == client_id).with_for_update(read=True)
    )
    owner: uuid.UUID = (await session.execute(stmt)).scalar_one()
    return owner


async def hand_over_on_client(
    session: AsyncSession,
    model: type[Deal] | type[Policy],
    client_id: uuid.UUID,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
) -> list[uuid.UUID]:
    """Give ``to_user`` ``from_user``'s deals (or policies) on one client, each with a new
    version (open ETags go stale); the ids moved, in id order."""
    table: Table = model.__table__  # type: ignore[union-attr]
    stmt = (
        update(table)
        .where(table.c.client_id == client_id, table.c.owner_id == from_user)
        .values(owner_id=to_user, version=table.c.version + 1, updated_at=utcnow())
        .returning(table.c.id)
    )
    return sorted((await session.execute(stmt)).scalars())
