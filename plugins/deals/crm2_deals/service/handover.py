"""A client handed to another owner takes the previous owner's deals and policies on it along.

A deal's or policy's owner must see its client (``service.owners``). When a client
changes owner, its previous owner keeps seeing it only if they hold
``deals:all_records``; otherwise their deals and policies on it would be cards whose
client answers them 404, so they go to the new owner, as a user's hand-over
(``reassign``) moves them: each gets a new version, its activities go along, each
deal's change of owner is first put to ``crm2_deals_validate_change`` (a refusal is a
422, nothing written) and each announces ``*.updated`` with ``changed=["owner_id"]``
and ``previous_owner_id``. Deals and policies of third owners on the client stay put.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import publish, user_grants
from crm2_deals.events import DealUpdated, PolicyUpdated
from crm2_deals.extensions import vet, vetting
from crm2_deals.hookspecs import DealChange
from crm2_deals.models import Deal, Policy
from crm2_deals.repository import activities as activities_repo
from crm2_deals.repository import clients as clients_repo
from crm2_deals.repository import deals as deals_repo
from crm2_deals.service.deals import snapshot
from crm2_deals.visibility import ALL_RECORDS
from crm2_hookspecs import Principal

if TYPE_CHECKING:
    from crm2_core.api import AppContext


async def still_sees_client(session: AsyncSession, user: uuid.UUID) -> bool:
    """Does ``user`` see a client they no longer own (``deals:all_records``, active)?"""
    granted = await user_grants(session, user, (ALL_RECORDS,), hooks=True)
    return granted is not None and ALL_RECORDS in granted


async def vet_carry_along(
    session: AsyncSession,
    context: AppContext,
    principal: Principal,
    client_id: uuid.UUID,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
) -> bool:
    """Whether ``carry_along`` would move anything, after putting each deal's change of
    owner to ``crm2_deals_validate_change`` (422 ``deals-change-vetoed`` on a refusal);
    writes nothing (an import's check pass asks this)."""
    if from_user == to_user or await still_sees_client(session, from_user):
        return False
    if vetting(context):
        for deal in await deals_repo.owned_on_client(session, client_id, from_user):
            before = snapshot(deal)
            after = {**before, "owner_id": str(to_user)}
            change = DealChange("update", deal.id, before, after, changed=("owner_id",))
            await vet(context, session, principal, change)
    return True


async def carry_along(
    session: AsyncSession,
    context: AppContext,
    principal: Principal,
    client_id: uuid.UUID,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
) -> None:
    """Move ``from_user``'s deals and policies on the client to ``to_user`` (see the
    module), unless ``from_user`` still sees the client. Call before the client's own
    update: a veto then leaves everything as it was.

    The client is locked first (``clients_repo.lock_for_handover``): a deal, policy or
    activity being written on it as ``from_user``'s (share-locking it) commits before
    the records are looked for and moved, or waits and then finds the new owner."""
    if from_user == to_user:
        return
    await clients_repo.lock_for_handover(session, client_id)
    if not await vet_carry_along(session, context, principal, client_id, from_user, to_user):
        return
    hand_over = clients_repo.hand_over_on_client
    deal_ids = await hand_over(session, Deal, client_id, from_user, to_user)
    policy_ids = await hand_over(session, Policy, client_id, from_user, to_user)
    await activities_repo.reassign_records(session, to_user, deal_ids, policy_ids)
    for ids, event in ((deal_ids, DealUpdated), (policy_ids, PolicyUpdated)):
        for record_id in ids:
            handed = event(changed=["owner_id"], owner_id=to_user, previous_owner_id=from_user)
            publish(session, handed, subject=record_id, actor=principal)
