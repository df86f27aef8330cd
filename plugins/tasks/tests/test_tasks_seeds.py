"""``crm2 seed demo``: every demo agent gets a task list linked to their demo deals."""

from __future__ import annotations

import inspect
from typing import Any

from crm2_tasks.models import Task
from sqlalchemy import func, select
from tasks_kit import Tasks


async def seed_demo(app: Any) -> None:
    """What ``crm2 seed demo`` does: every enabled plugin's seed, in dependency order."""
    for _plugin, result in app.context.plugins.call("crm2_seed", name="demo", context=app.context):
        if inspect.isawaitable(result):
            await result


async def test_demo_agents_get_tasks_linked_to_their_deals(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(plugins=["deals", "tasks"])
    tasks = Tasks(app)
    admin = await tasks.user("admin")
    pipelines = await tasks.client.get("/api/v1/deals/pipelines", headers=admin.headers)
    if not pipelines.json()["items"]:  # the test kit empties the data migration's rows
        stages = [
            {"name": "New", "probability": 10},
            {"name": "Offer", "probability": 50},
            {"name": "Won", "probability": 100, "kind": "won"},
            {"name": "Lost", "probability": 0, "kind": "lost"},
        ]  # deals' demo needs an open, a won and a lost stage
        body = {"name": "Sales", "is_default": True, "stages": stages}
        made = await tasks.client.post("/api/v1/deals/pipelines", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
    await seed_demo(app)
    async with app.context.session_factory() as session:
        per_agent = dict(
            (
                await session.execute(
                    select(Task.assignee_id, func.count()).group_by(Task.assignee_id)
                )
            ).all()
        )
        linked = (
            await session.execute(
                select(func.count()).select_from(Task).where(Task.link_kind == "deals.deal")
            )
        ).scalar_one()
    assert per_agent and all(n == 8 for n in per_agent.values())
    assert linked == 5 * len(per_agent)
    await seed_demo(app)  # a second run adds nothing
    async with app.context.session_factory() as session:
        total = (await session.execute(select(func.count()).select_from(Task))).scalar_one()
    assert total == 8 * len(per_agent)


async def test_demo_without_deals_still_gives_agents_tasks(tasks: Tasks) -> None:
    agent = await tasks.user("agent")
    await seed_demo(tasks.app)
    mine = await tasks.client.get("/api/v1/tasks/views/mine", headers=agent.headers)
    assert len(mine.json()["items"]) == 8
    assert all(t["link"] is None for t in mine.json()["items"])


async def test_the_load_data_set_serves_my_open_tasks_by_due_date(tasks: Tasks) -> None:
    from crm2_tasks.seed_load import agent_email, seed_load

    result = await seed_load(tasks.app.context, tasks=600, agents=3, password="load-pass-123456")
    assert result == {"agents": 3, "tasks": 600}
    login = await tasks.client.post(
        "/api/v1/auth/login", json={"email": agent_email(1), "password": "load-pass-123456"}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    page = (await tasks.client.get("/api/v1/tasks/views/mine?limit=50", headers=headers)).json()
    items = page["items"]
    assert len(items) == 50 and page["next_cursor"]
    assert all(t["status"] in ("todo", "in_progress", "waiting") for t in items)
    dues = [t["due_at"] for t in items if t["due_at"]]
    assert dues == sorted(dues)
