"""``crm2 seed demo``: a realistic task list for every demo agent, linked to their demo deals.

Runs after deals' seed when deals is enabled (plugins seed in dependency order,
ties by name), and reads deals' rows by table name: tasks imports nothing of
deals. Seeding twice adds nothing (tasks carry a ``demo`` tag per agent).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import column, func, select, table
from sqlmodel import col

from crm2_core.api import utcnow
from crm2_tasks.models import Task
from crm2_tasks.service.tasks import new_task

_user = table("auth_user", column("id"), column("email"), column("is_active"))
_user_role = table("auth_user_role", column("user_id"), column("role_name"))
_deal = table("deals_deal", column("id"), column("title"), column("owner_id"), column("status"))

TEMPLATES = [
    ("Call {deal} about the offer", "high", ["call"]),
    ("Send the revised quote for {deal}", "normal", ["quote"]),
    ("Collect signed documents for {deal}", "normal", ["documents"]),
    ("Check the insurer's answer on {deal}", "low", ["insurer"]),
    ("Prepare the meeting for {deal}", "urgent", ["meeting"]),
]
GENERIC = [
    ("Update my pipeline notes", "low", ["admin"]),
    ("Weekly review with the manager", "normal", ["meeting"]),
    ("Answer open client e-mails", "high", ["email"]),
]


def seed(name: str, context: Any) -> Awaitable[Any] | None:
    """``demo``, or ``load`` sized by CRM2_SEED_TASKS (as deals reads CRM2_SEED_DEALS).

    ``load`` adds tasks only when CRM2_SEED_TASKS is set: bench scenario 8 times
    ``crm2 seed load`` for deals, and ten agents' password hashes plus the tasks
    would count against it.
    """
    if name == "demo":
        return _demo(context)
    if name == "load":
        from crm2_core.api import env_count
        from crm2_tasks.seed_load import seed_load

        count = env_count("CRM2_SEED_TASKS", 0)
        return seed_load(context, tasks=count, agents=10) if count > 0 else None
    return None


async def _agents(session: Any) -> list[uuid.UUID]:
    stmt = (
        select(_user.c.id)
        .join(_user_role, _user_role.c.user_id == _user.c.id)
        .where(_user_role.c.role_name == "agent", _user.c.is_active.is_(True))
        .order_by(_user.c.email)
    )
    return [uuid.UUID(str(v)) for v in (await session.execute(stmt)).scalars()]


async def _demo(context: Any) -> None:
    rng = random.Random(11)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    async with context.session_factory() as session:
        for agent in await _agents(session):
            seeded = select(func.count()).select_from(Task).where(col(Task.creator_id) == agent)
            if (await session.execute(seeded)).scalar_one() > 0:
                continue
            deals: list[tuple[Any, str]] = []
            if context.is_enabled("deals"):
                stmt = select(_deal.c.id, _deal.c.title).where(
                    _deal.c.owner_id == agent, _deal.c.status == "open"
                )
                deals = [(uuid.UUID(str(i)), t) for i, t in (await session.execute(stmt)).all()]
            for index in range(8):
                if deals and index < 5:
                    deal_id, deal_title = deals[index % len(deals)]
                    title, priority, tags = TEMPLATES[index % len(TEMPLATES)]
                    title = title.format(deal=deal_title)
                    link: tuple[str | None, str | None] = ("deals.deal", str(deal_id))
                else:
                    title, priority, tags = GENERIC[index % len(GENERIC)]
                    link = (None, None)
                due = now + timedelta(hours=rng.randint(-48, 24 * 10))
                status = rng.choice(["todo", "todo", "in_progress", "waiting"])
                values = {
                    "title": title,
                    "priority": priority,
                    "tags": [*tags, "demo"],
                    "status": status,
                    "assignee_id": agent,
                    "creator_id": agent,
                    "due_at": due,
                    "reminders": [60] if index % 2 == 0 else [],
                    "checklist": [
                        {"text": "Prepare", "done": True},
                        {"text": "Do it", "done": False},
                    ],
                    "link_kind": link[0],
                    "link_id": link[1],
                }
                await new_task(session, context, actor=None, values=values)
        await session.commit()
