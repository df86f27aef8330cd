"""Handing a user's clients, deals, policies and activities to another user.

Called through ``crm2_reassign_user`` before the user is deleted. Each moved
row gets a new version (open ETags go stale) and clients, deals and policies publish
their ``*.updated`` event with ``changed=["owner_id"]``, so the new owner's
streams and handlers hear of them (and, through ``previous_owner_id``, the
previous owner's). The new owner must be one who may own deals records (``service.
owners``: a viewer may not, 422 ``owner-not-permitted``), and each deal's change of
owner is first put to ``crm2_deals_validate_change`` (``service.deals.
vet_owner_handover``): a plugin that refuses one stops the whole hand-over with a
422, nothing moved.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import AppContext, OwnerNotPermitted, User, publish, user_grants, utcnow
from crm2_deals.errors import OwnerCannotSeeClient
from crm2_deals.events import ClientUpdated, DealUpdated, PolicyUpdated
from crm2_deals.models import Activity, Client, Deal, Policy
from crm2_deals.repository import clients as clients_repo
from crm2_deals.service.deals import vet_owner_handover
from crm2_deals.service.handover import still_sees_client
from crm2_deals.service.owners import WRITE
from crm2_deals.visibility import ALL_RECORDS
from crm2_hookspecs import Principal

UPDATED_EVENTS: dict[type[Any], type[Any]] = {
    Client: ClientUpdated,
    Deal: DealUpdated,
    Policy: PolicyUpdated,
}


async def check_heir(session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID) -> None:
    """422 when ``to_user`` may not own deals records (``service.owners``) and
    ``from_user`` has some to hand over: nothing is moved then."""
    granted = await user_grants(session, to_user, (WRITE,), hooks=True)
    if granted is not None and WRITE in granted:
        return
    for model in (Client, Deal, Policy, Activity):
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        owned = select(table.c.id).where(table.c.owner_id == from_user).limit(1)
        if (await session.execute(owned)).first() is not None:
            raise OwnerNotPermitted(
                f"user {to_user} cannot own deals records: they may not {WRITE}"
            )


async def check_heir_sees_clients(
    session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID
) -> None:
    """422 when ``from_user`` (one holding ``deals:all_records``) has a deal, policy or
    activity on a client of a third owner's and ``to_user`` could not see it: a
    record's owner must see its client (``service.owners``), or their card's client
    answers them 404. Nothing is moved then; hand over to a user who holds it."""
    for model in (Deal, Policy, Activity):
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        stmt = (
            select(table.c.id, col(Client.id), col(Client.name))
            .join(Client, col(Client.id) == table.c.client_id)
            .where(
                table.c.owner_id == from_user,
                col(Client.owner_id).not_in((from_user, to_user)),
            )
            .limit(1)
        )
        found = (await session.execute(stmt)).first()
        if found is not None and not await still_sees_client(session, to_user):
            kind = {Deal: "deal", Policy: "policy"}.get(model, "activity")
            raise OwnerCannotSeeClient(
                f"user {to_user} cannot see client {found[2]!r} ({found[1]}), another "
                f"owner's, where {from_user}'s {kind} {found[0]} is, and they do not hold "
                f"{ALL_RECORDS}: hand the records to a user who does"
            )


async def lock_users(session: AsyncSession, from_user: uuid.UUID, to_user: uuid.UUID) -> None:
    """Lock the leaving user's row (PostgreSQL ``FOR UPDATE``) and the heir's (``FOR
    SHARE``) to the commit, in id order. The leaving user's: a record being given to
    them waits for the commit, or the lock for the record's. The heir's: a deactivation
    of theirs in flight is waited for, and the core reads them again under this lock
    (``reassign_user``), a 422 then; a later one waits for the hand-over. In id order:
    two hand-overs between the same two users (each one's heir the other's leaving
    user) would otherwise each hold the row the other waits for."""
    for user_id in sorted((from_user, to_user)):
        stmt = select(col(User.id)).where(col(User.id) == user_id)
        await session.execute(stmt.with_for_update(read=user_id != from_user))


async def reassign_owner(
    session: AsyncSession,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
    actor: Principal | None,
    context: AppContext,
) -> dict[str, int]:
    await check_heir(session, from_user, to_user)
    # as a client's hand-over (``service.handover``): a deal, policy or activity being
    # written on one of the clients commits first and is then moved, or waits and
    # then finds the new owner
    await clients_repo.lock_owned_by(session, from_user)
    # one being written as ``from_user``'s on a client of another owner's locked none
    # of these; it holds the user's row (``FOR KEY SHARE``, its owner key's check) to
    # its commit: locking the row waits for it. After the clients, as every writer
    # locks its client before it writes the key: no deadlock. The heir's row with it.
    await lock_users(session, from_user, to_user)
    await check_heir_sees_clients(session, from_user, to_user)
    await vet_owner_handover(session, context, actor, from_user, to_user)
    moved: dict[str, int] = {}
    now = utcnow()
    for model in (Client, Deal, Policy, Activity):
        table: Any = getattr(model, "__table__")  # noqa: B009 - a union of table classes
        rows = (
            await session.execute(
                update(table)
                .where(table.c.owner_id == from_user)
                .values(owner_id=to_user, version=table.c.version + 1, updated_at=now)
                .returning(table.c.id)
            )
        ).scalars()
        ids = list(rows)
        event = UPDATED_EVENTS.get(model)
        if event is not None:
            for record_id in ids:
                publish(
                    session,
                    event(changed=["owner_id"], owner_id=to_user, previous_owner_id=from_user),
                    subject=record_id,
                    actor=actor,
                )
        if ids:
            moved[table.name] = len(ids)
    return moved
