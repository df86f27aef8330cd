"""Activities: notes, calls, meetings, e-mails, and the system entries other services write."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_deals.models import Activity


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
    """Record what happened (stage move, won/lost, policy issued/cancelled/expired)."""
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
