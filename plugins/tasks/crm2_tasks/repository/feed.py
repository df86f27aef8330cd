"""Feed tokens and the tasks a feed shows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_tasks.models import FeedToken, Task

FEED_LIMIT = 2000


async def user_for_token(session: AsyncSession, token_hash: str) -> uuid.UUID | None:
    stmt = select(col(FeedToken.user_id)).where(col(FeedToken.token_hash) == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_token(session: AsyncSession, user_id: uuid.UUID, token_hash: str) -> None:
    await revoke(session, user_id)
    session.add(FeedToken(user_id=user_id, token_hash=token_hash))
    await session.flush()


async def revoke(session: AsyncSession, user_id: uuid.UUID) -> bool:
    result = await session.execute(delete(FeedToken).where(col(FeedToken.user_id) == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def feed_tasks(session: AsyncSession, user_id: uuid.UUID, since: datetime) -> list[Task]:
    """The user's assigned tasks with a due time from ``since`` on, soonest first."""
    stmt = (
        select(Task)
        .where(
            col(Task.assignee_id) == user_id,
            col(Task.due_key) >= since,
            col(Task.status) != "cancelled",
        )
        .order_by(col(Task.due_key), col(Task.id))
        .limit(FEED_LIMIT)
    )
    return [t for t in (await session.execute(stmt)).scalars() if t.due_at is not None]
