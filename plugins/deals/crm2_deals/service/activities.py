"""Activities: notes, calls, meetings, e-mails, and the system entries other services write.

Who owns an activity: the owner of the most specific record it is about (the
policy, else the deal, else the client) at the time it is written, whoever
writes it. So a manager's note on an agent's deal lands in that agent's
timeline, and an agent sees exactly the activities of the records they own.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import (
    PageParams,
    Records,
    Visibility,
    utcnow,
)
from crm2_deals.errors import ActivityLinkInvalid, SystemActivityReadOnly
from crm2_deals.models import Activity, Deal, Policy
from crm2_deals.repository import activities as repo
from crm2_deals.repository import clients as clients_repo
from crm2_deals.repository import deals as deals_repo
from crm2_deals.repository import policies as policies_repo
from crm2_deals.schemas.activities import ActivityCreate, ActivityFilters, ActivityUpdate
from crm2_deals.visibility import RULES
from crm2_hookspecs import Principal

SUBJECT_LENGTH = 300  # the column's


def add_system_activity(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    owner_id: uuid.UUID,
    subject: str,
    body: str = "",
    deal_id: uuid.UUID | None = None,
    policy_id: uuid.UUID | None = None,
) -> Activity:
    """Record what happened (stage move, won/lost, policy issued/cancelled/expired).

    A subject built from long names (a 1,000-character lost reason, two 200-character
    stages) is cut to the column's 300 characters; the body then keeps it whole.
    """
    if len(subject) > SUBJECT_LENGTH:
        body = subject + ("\n\n" + body if body else "")
        subject = subject[: SUBJECT_LENGTH - 1] + "\u2026"
    row = Activity(
        kind="system",
        client_id=client_id,
        deal_id=deal_id,
        policy_id=policy_id,
        owner_id=owner_id,
        author_id=None,
        subject=subject,
        body=body,
    )
    session.add(row)
    return row


async def _records(
    session: AsyncSession, vis: Visibility, data: ActivityCreate
) -> tuple[Deal | None, Policy | None]:
    """The activity's deal and policy, when given; 422 unless visible."""
    policy = deal = None
    if data.policy_id is not None:
        policy = await policies_repo.policies.get(session, vis, data.policy_id)
        if policy is None:
            raise ActivityLinkInvalid(f"no policy {data.policy_id}")
    if data.deal_id is not None:
        deal = await deals_repo.deals.get(session, vis, data.deal_id)
        if deal is None:
            raise ActivityLinkInvalid(f"no deal {data.deal_id}")
    return deal, policy


async def _links(
    session: AsyncSession, vis: Visibility, data: ActivityCreate
) -> tuple[uuid.UUID, uuid.UUID, Deal | None, Policy | None]:
    """``(client id, owner id, deal, policy)``; 422 unless every link is visible and fits.

    The client is read share-locked to the commit (``clients_repo.shared_client``): a
    hand-over of it waits for the activity, or the activity for the hand-over, and
    then takes the new owner. Its deal or policy, read before the lock (to find the
    client), is read again after it on PostgreSQL: the hand-over may have moved it."""
    deal, policy = await _records(session, vis, data)
    client_id = data.client_id or (policy.client_id if policy else None)
    client_id = client_id or (deal.client_id if deal else None)
    assert client_id is not None  # the schema asks for at least one link
    client = await clients_repo.shared_client(session, vis, client_id)
    if client is None:
        raise ActivityLinkInvalid(f"no client {client_id}")
    if (deal or policy) and session.get_bind().dialect.name == "postgresql":
        deal, policy = await _records(session, vis, data)
    if deal is not None and deal.client_id != client.id:
        raise ActivityLinkInvalid("the deal belongs to another client")
    if policy is not None and policy.client_id != client.id:
        raise ActivityLinkInvalid("the policy belongs to another client")
    if deal and policy and policy.deal_id is not None and policy.deal_id != deal.id:
        raise ActivityLinkInvalid("the policy belongs to another deal")
    owner = policy.owner_id if policy else deal.owner_id if deal else client.owner_id
    return client.id, owner, deal, policy


async def create_activity(
    session: AsyncSession, principal: Principal, data: ActivityCreate
) -> Activity:
    client_id, owner_id, deal, policy = await _links(
        session, RULES.in_session(session, principal), data
    )
    row = Activity(
        kind=data.kind,
        client_id=client_id,
        deal_id=deal.id if deal else None,
        policy_id=policy.id if policy else None,
        author_id=principal.id,
        owner_id=owner_id,
        subject=data.subject,
        body=data.body,
        occurred_at=data.occurred_at or utcnow(),
    )
    return await repo.activities.add(session, row)


ACTIVITIES = Records(repo.activities, RULES)
get_activity = ACTIVITIES.get


async def update_activity(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    if_match: str,
    data: ActivityUpdate,
) -> Activity:
    row = await ACTIVITIES.for_update(session, principal, activity_id, if_match)
    version = row.version
    if row.kind == "system":
        raise SystemActivityReadOnly("system entries record what happened; they are not edited")
    values = data.model_dump(exclude_unset=True)
    # only what differs: a PATCH that changes nothing writes nothing (ETags stay good)
    await repo.activities.update(session, row, values, expected_version=version)
    return row


async def delete_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID, if_match: str | None
) -> None:
    row = await ACTIVITIES.for_update(session, principal, activity_id, if_match)
    if row.kind == "system":
        raise SystemActivityReadOnly("system entries record what happened; they are not deleted")
    await repo.activities.delete_if_match(session, row, if_match)


async def list_activities(
    session: AsyncSession, principal: Principal, filters: ActivityFilters, page: PageParams
) -> tuple[list[Any], str | None]:
    return await repo.list_activities(session, RULES.in_session(session, principal), filters, page)


async def client_timeline(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    kinds: tuple[str, ...],
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """404 unless the client is visible; then its visible entries, newest first."""
    vis = RULES.in_session(session, principal)
    await clients_repo.clients.get_or_404(session, vis, client_id)
    return await repo.timeline(session, vis, client_id, kinds, page)


async def follow_owner(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    policy_id: uuid.UUID | None = None,
) -> None:
    """Hand a reassigned record's activities to its new owner.

    An activity belongs to the owner of the most specific record it is about
    (policy, else deal, else client); without this, the previous owner would keep
    seeing the notes of a record they can no longer open, and the new owner none.
    """
    await repo.reassign(
        session, owner_id, client_id=client_id, deal_id=deal_id, policy_id=policy_id
    )
