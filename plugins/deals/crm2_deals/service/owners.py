"""Who may own a deals record, one rule for clients, deals and policies.

The core's ``resolve_owner`` settles the request's side (an agent gives records
only to themselves, the owner is an active user); here, the record's side: an
owner's roles must let them write deals records (a read-only viewer owns
nothing), and a deal's or policy's owner must be able to see its client, or they
would hold a card whose client answers them 404.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import Visibility, acting_user, resolve_owner, user_grants
from crm2_deals.errors import OwnerCannotSeeClient
from crm2_deals.visibility import ALL_RECORDS
from crm2_hookspecs import Principal

WRITE = "deals:write"  # what an owner's roles must grant


async def owner_for(
    session: AsyncSession,
    principal: Principal,
    visibility: Visibility,
    requested: uuid.UUID | None,
    *,
    default: uuid.UUID | None = None,
    current: uuid.UUID | None = None,
) -> uuid.UUID:
    """``resolve_owner`` with the deals rule: the owner may write deals records."""
    return await resolve_owner(
        session, principal, visibility, requested, default=default, current=current, may_own=WRITE
    )


async def check_owner_sees_client(
    session: AsyncSession, principal: Principal, owner: uuid.UUID, client_owner: uuid.UUID
) -> None:
    """422 unless ``owner`` may see a client of ``client_owner``: owns it, or holds
    ``deals:all_records``. The caller acting for themselves has seen it already
    (the client was read with their visibility): no read then."""
    if owner == client_owner or owner == acting_user(principal):
        return
    granted = await user_grants(session, owner, (ALL_RECORDS,), hooks=True)
    if granted is None or ALL_RECORDS not in granted:
        raise OwnerCannotSeeClient(
            f"user {owner} cannot see this client (another owner's, and they do not hold "
            f"{ALL_RECORDS}): hand the client over first, or choose another owner"
        )
