"""``crm2 seed demo``: a welcome notification per demo user and a preference or two.

The shipped rules (deals' "deal won", …) do the rest once demo events flow.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import column, select, table
from sqlmodel import col

from crm2_notifications.models import Notification

DEMO_EVENT = uuid.UUID("6f1d8a57-2f0e-4a43-a7a9-6d2b8f0c5e11")
_user = table("auth_user", column("id"), column("is_active"))


async def _demo(context: Any) -> None:
    async with context.session_factory() as session:
        users = list(
            (await session.execute(select(_user.c.id).where(_user.c.is_active.is_(True)))).scalars()
        )
        have = set(
            (
                await session.execute(
                    select(col(Notification.user_id)).where(
                        col(Notification.event_id) == DEMO_EVENT
                    )
                )
            ).scalars()
        )
        for user_id in users:
            uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
            if uid in have:
                continue
            session.add(
                Notification(
                    user_id=uid,
                    event_id=DEMO_EVENT,
                    event_type="notifications.demo.welcome",
                    title="Welcome to crm2",
                    body="Notifications about your deals, tasks and policies arrive here.",
                    link="/",
                )
            )
        await session.commit()


def seed(name: str, context: Any) -> Awaitable[None] | None:
    if name == "demo":
        return _demo(context)
    return None
