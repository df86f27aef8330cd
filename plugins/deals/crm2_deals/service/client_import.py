"""The client CSV import: upsert by e-mail or tax id, a batch of rows at a time.

The kit reads the file, runs small files in the request and large ones as a
background job (``CLIENT_IMPORT``); this module says what a row is and writes a
batch with a few queries: the batch's owners and the clients matching its
e-mails and tax ids are read once, new clients are inserted together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    CsvImport,
    RowError,
    Visibility,
    acting_user,
    publish_many,
    split_list,
    user_grants,
    user_ids_by_email,
)
from crm2_deals import csv_io
from crm2_deals.errors import ChangeVetoed
from crm2_deals.events import ClientCreated
from crm2_deals.models import Client
from crm2_deals.repository import clients as repo
from crm2_deals.repository.clients import ClientIndex, NewClient
from crm2_deals.schemas.clients import ClientCreate, ClientCsvRow
from crm2_deals.service.activities import follow_owner
from crm2_deals.service.clients import search_text_for, write_update
from crm2_deals.service.handover import carry_along, vet_carry_along
from crm2_deals.service.owners import WRITE
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext

Outcome = str | RowError
# what a client may hold of each list: ClientCreate's own limits
_MAX_ITEMS = {
    name: next(
        m.max_length for m in ClientCreate.model_fields[name].metadata if hasattr(m, "max_length")
    )
    for name in ("emails", "phones", "tags")
}


@dataclass(frozen=True)
class ClientRow:
    data: ClientCsvRow
    owner_email: str | None
    kind_given: bool


def parse_row(values: dict[str, str]) -> ClientRow:
    """A CSV row as a validated ``ClientCreate`` (the owner is resolved per batch)."""
    data = ClientCsvRow(
        kind=values.get("kind", "").lower() or "person",
        name=values.get("name", ""),
        emails=split_list(values.get("emails", "")),
        phones=split_list(values.get("phones", "")),
        tax_id=values.get("tax_id") or None,
        address=values.get("address", ""),
        tags=split_list(values.get("tags", "")),
    )
    return ClientRow(data, values.get("owner_email") or None, bool(values.get("kind")))


def _added(kept: Sequence[str], brought: Sequence[str]) -> list[str]:
    return [*kept, *[item for item in brought if item not in kept]]


def _overflow(client: Client | NewClient, row: ClientRow) -> RowError | None:
    """A row whose lists, added to the client's, would pass what a client may hold."""
    for name in ("emails", "phones", "tags"):
        merged = _added(getattr(client, name), getattr(row.data, name))
        limit = _MAX_ITEMS[name]
        if len(merged) > limit:
            return RowError(f"{name}: the client would have {len(merged)}, at most {limit}")
    return None


def _merge(client: Client, row: ClientRow, owner: uuid.UUID | None) -> dict[str, Any]:
    """An upsert keeps what the client has and adds what the row brings."""
    data = row.data
    values: dict[str, Any] = {"name": data.name}
    if row.kind_given:
        values["kind"] = data.kind
    values["emails"] = _added(client.emails, data.emails)
    values["phones"] = _added(client.phones, data.phones)
    values["tags"] = _added(client.tags, data.tags)
    if data.tax_id:
        values["tax_id"] = data.tax_id
    if data.address:
        values["address"] = data.address
    if owner is not None:
        values["owner_id"] = owner
    return values


@dataclass
class _Batch:
    session: AsyncSession
    principal: Principal
    context: AppContext
    visibility: Visibility
    owners: dict[str, uuid.UUID]
    index: ClientIndex
    write: bool
    standing: dict[uuid.UUID, str | None] = field(default_factory=dict)
    pending: list[NewClient] = field(default_factory=list)

    async def owner_of(self, row: ClientRow) -> uuid.UUID | RowError | None:
        if not row.owner_email:
            return None
        owner = self.owners.get(row.owner_email.lower())
        if owner is None:
            return RowError(f"owner_email {row.owner_email!r} is not a user")
        if not self.visibility.allows(owner):
            return RowError("you can only import clients you own")
        return owner

    async def cannot_own(self, owner: uuid.UUID) -> RowError | None:
        """Why ``owner`` may not own a client (as ``owner_for`` on a PATCH), else ``None``."""
        if owner not in self.standing:
            granted = await user_grants(self.session, owner, (WRITE,), hooks=True)
            self.standing[owner] = (
                f"owner {owner} is not an active user"
                if granted is None
                else None
                if WRITE in granted
                else f"owner {owner} cannot own clients: they may not {WRITE}"
            )
        reason = self.standing[owner]
        return None if reason is None else RowError(reason)

    async def row(self, row: ClientRow) -> Outcome:
        owner = await self.owner_of(row)
        if isinstance(owner, RowError):
            return owner
        # a client the importer cannot see is no match to them (as the duplicate check
        # of a create: ``check_duplicates``), nor told of
        matches = [
            c
            for c in self.index.matching(row.data.emails, row.data.tax_id)
            if self.visibility.allows(c.owner_id)
        ]
        if len(matches) > 1:
            names = ", ".join(repr(c.name) for c in matches[:3])
            return RowError(f"the e-mails and tax id match several clients: {names}")
        if not matches:
            return await self.create(row, owner or acting_user(self.principal))
        match = matches[0]
        overflow = _overflow(match, row)
        if overflow is not None:
            return overflow
        handed_over = owner is not None and owner != match.owner_id
        if handed_over and owner is not None and (refused := await self.cannot_own(owner)):
            return refused
        if handed_over and owner is not None and isinstance(match, Client):
            # as a PATCH does: the previous owner's deals and policies on it go along
            try:
                hand_over = carry_along if self.write else vet_carry_along
                await hand_over(
                    self.session, self.context, self.principal, match.id, match.owner_id, owner
                )
            except ChangeVetoed as refusal:  # nothing of the row written yet
                return RowError(refusal.detail)
        if not self.write:
            return "updated"
        if isinstance(match, NewClient):  # created by an earlier row of this batch
            await self.flush()
            client = await repo.clients.get_or_404(self.session, Visibility.system(), match.id)
        else:
            client = match
        before = client.version
        if handed_over and owner is not None:  # as a PATCH does: the client's notes go along
            await follow_owner(self.session, owner, client_id=client.id)
        await write_update(self.session, self.principal, client, _merge(client, row, owner))
        self.index.add(client)
        return "updated" if client.version != before else "skipped"

    async def create(self, row: ClientRow, owner: uuid.UUID) -> Outcome:
        if (refused := await self.cannot_own(owner)) is not None:
            return refused
        data = row.data
        client = NewClient(
            kind=data.kind, name=data.name, emails=data.emails, phones=data.phones,
            tax_id=data.tax_id, address=data.address, tags=data.tags, owner_id=owner,
            search_text=search_text_for(data.name, data.emails, data.phones),
        )  # fmt: skip
        self.index.add(client)
        if self.write:
            self.pending.append(client)
        return "created"

    async def flush(self) -> None:
        """Insert the new clients, their e-mail rows and their events."""
        if not self.pending:
            return
        await repo.insert_clients(self.session, self.pending)
        created = [
            (ClientCreated(name=c.name, kind=c.kind, owner_id=c.owner_id), c.id)
            for c in self.pending
        ]
        await publish_many(self.session, created, actor=self.principal)
        self.pending.clear()


async def _locked_index(
    session: AsyncSession,
    visibility: Visibility,
    index: ClientIndex,
    emails: set[str],
    taxes: set[str],
) -> ClientIndex:
    """Lock every client the batch may write, then read again which clients match.

    Locked up front in id order, as a user's hand-over (``reassign``) locks theirs
    before their user row: a row giving a client to a user (their row share-locked by
    its key) and a later row handing over one of that user's clients would otherwise
    deadlock with it. Read again under the lock: a client whose e-mails or tax id were
    being changed as the batch first read them (their change holding the lock the
    batch waited for) matches by what it holds now, not by what it held, and a client
    that came to match meanwhile is locked too before the batch writes.
    """
    locked: set[uuid.UUID] = set()
    while True:
        more = [c for c in index.visible(visibility) if c not in locked]
        if not more:
            return index
        await repo.lock_for_import(session, more)
        locked.update(more)
        index = await ClientIndex.load(session, emails, taxes)


async def _batch(
    session: AsyncSession,
    principal: Principal,
    rows: Sequence[tuple[int, ClientRow]],
    context: AppContext,
    write: bool,
) -> list[Outcome]:
    wanted = {r.owner_email for _, r in rows if r.owner_email}
    emails = {e for _, r in rows for e in r.data.emails}
    taxes = {r.data.tax_id for _, r in rows if r.data.tax_id}
    index = await ClientIndex.load(session, emails, taxes)
    visibility = RULES.in_session(session, principal)
    if write:
        index = await _locked_index(session, visibility, index, emails, taxes)
    batch = _Batch(session, principal, context, visibility,
                   await user_ids_by_email(session, wanted), index, write)  # fmt: skip
    outcomes = [await batch.row(row) for _, row in rows]
    await batch.flush()
    return outcomes


async def import_batch(
    session: AsyncSession,
    principal: Principal,
    rows: Sequence[tuple[int, ClientRow]],
    context: AppContext,
) -> list[Outcome]:
    """Create, update or skip each row (in order); a refused row is a ``RowError``."""
    return await _batch(session, principal, rows, context, write=True)


async def check_batch(
    session: AsyncSession,
    principal: Principal,
    rows: Sequence[tuple[int, ClientRow]],
    context: AppContext,
) -> dict[int, str]:
    """The rows ``import_batch`` would refuse, without writing anything."""
    outcomes = await _batch(session, principal, rows, context, write=False)
    return {
        n: o.reason for (n, _), o in zip(rows, outcomes, strict=True) if isinstance(o, RowError)
    }


CLIENT_IMPORT: CsvImport[ClientRow] = CsvImport(
    "deals.clients",
    columns=(*csv_io.CLIENT_IMPORT_COLUMNS, "owner_email"),
    required=("name",),
    parse=parse_row,
    apply=import_batch,
    check=check_batch,
    rules=RULES,
    file_error=csv_io.CsvFileInvalid,
    # a batch is a few multi-row statements and one transaction in a job: 1,000 rows
    # halve the round trips and commits of the kit's 500 and still show progress often
    batch_size=1_000,
    # a hand-over puts each deal going along to crm2_deals_validate_change, as a PATCH
    needs_context=True,
)
