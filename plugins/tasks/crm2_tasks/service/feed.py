"""The per-user iCalendar feed: a secret URL (stored hashed), revocable, read without login."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.api import acting_user, user_permitted
from crm2_hookspecs import Principal
from crm2_tasks import clock, ical
from crm2_tasks.errors import FeedNotFound
from crm2_tasks.repository import feed as repo

PATH = "/api/v1/tasks/feed/{token}.ics"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_feed(session: AsyncSession, principal: Principal) -> str:
    """A new feed address for the caller; the previous one stops working."""
    token = secrets.token_urlsafe(32)
    await repo.set_token(session, acting_user(principal), _hash(token))
    return PATH.format(token=token)


async def revoke_feed(session: AsyncSession, principal: Principal) -> None:
    if not await repo.revoke(session, acting_user(principal)):
        raise FeedNotFound("you have no calendar feed")


async def render_feed(session: AsyncSession, context: Any, token: str) -> str:
    if len(token) > 100:
        raise FeedNotFound("no calendar feed with this token")
    user_id = await repo.user_for_token(session, _hash(token))
    # the owner's right as it is now: a feed stops with their tasks:read
    if user_id is None or not await user_permitted(context, session, user_id, "tasks:read"):
        raise FeedNotFound("no calendar feed with this token")
    now = clock.now(context)
    days_back: int = context.plugin_settings("tasks").feed_days_back
    tasks = await repo.feed_tasks(session, user_id, now - timedelta(days=days_back))
    items = [
        ical.FeedItem(
            uid=f"{task.id}@crm2-tasks",
            title=task.title,
            description=task.description,
            due_at=task.due_at,
            updated_at=task.updated_at,
            done=task.status == "done",
        )
        for task in tasks
        if task.due_at is not None
    ]
    return ical.calendar("crm2 tasks", items, now)
