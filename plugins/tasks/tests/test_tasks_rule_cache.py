"""The per-process cache of automation rules: no query per event, and no stale rule.

A rule change takes effect for the next event at once: in the process that made
it (its commit drops the cache) and in any other (it hears the rule's
``tasks.automation_rule.changed`` event, in log order, before any later event).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crm2_tasks.events import AutomationRuleChanged
from crm2_tasks.models import AutomationRule, Task
from crm2_tasks.service.rule_cache import RuleCache, rule_cache
from sqlalchemy import func, select, update
from tasks_kit import API, Tasks
from test_tasks_automations import RULE, place_order, shop_app

from crm2_core.api import SYSTEM, Envelope, publish


async def _task_count(tasks: Tasks) -> int:
    async with tasks.app.context.session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(Task))).scalar_one())


async def test_rules_are_read_once_and_a_change_here_applies_to_the_next_event(
    crm2_app_factory: Any,
) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    created = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert created.status_code == 201, created.text
    cache = rule_cache(tasks.app.context)
    assert cache.hears  # the streams plugin is on: the cache keeps what it reads
    await place_order(tasks, agent, "1500")
    loads = cache.loads
    for _ in range(3):
        await place_order(tasks, agent, "2000")
    assert await _task_count(tasks) == 4
    # three more events and (at most) one read: a handler that runs before its own
    # batch reached the cache reads the database, and that is the only miss there is
    assert cache.loads - loads <= 1
    # switched off through the API: the very next event creates nothing
    rule = created.json()
    headers = {**admin.headers, "If-Match": f'"v{rule["version"]}"'}
    off = await tasks.client.patch(
        f"{API}/rules/{rule['id']}", json={"enabled": False}, headers=headers
    )
    assert off.status_code == 200, off.text
    loads = cache.loads
    await place_order(tasks, agent, "3000")
    assert await _task_count(tasks) == 4
    assert cache.loads == loads + 1
    changes = [e for e in await tasks.events() if e.type == AutomationRuleChanged.event_type]
    assert [e.data["change"] for e in changes] == ["created", "updated"]


async def test_a_change_made_by_another_process_is_heard_before_the_next_event(
    crm2_app_factory: Any,
) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    created = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    rule_id = uuid.UUID(created.json()["id"])
    await place_order(tasks, agent, "1500")
    cache = rule_cache(tasks.app.context)
    # Another process switches the rule off: a Core UPDATE (no ORM object in this
    # process's session) and the change event, as the rules service writes them.
    async with tasks.app.context.session_factory() as session:
        await session.execute(
            update(AutomationRule).where(AutomationRule.id == rule_id).values(enabled=False)
        )
        change = AutomationRuleChanged(rule_id=rule_id, name=RULE["name"], change="updated")
        publish(session, change, subject=rule_id, actor=SYSTEM)
        # what this process's ORM hook would have noted is not there for another process
        await session.commit()
    loads = cache.loads
    await place_order(tasks, agent, "5000")
    assert await _task_count(tasks) == 1  # the rule was off for this order
    assert cache.loads == loads + 1


def _envelope(position: int, type_: str = "shop.order.placed") -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type=type_,
        version=1,
        occurred_at=datetime.now(UTC),
        actor=SYSTEM,
        subject="x",
        data={},
        position=position,
    )


async def test_a_hole_in_what_was_heard_reads_the_database_again(crm2_app_factory: Any) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    await place_order(tasks, agent, "1500")
    cache = rule_cache(tasks.app.context)
    through = cache._through
    assert through is not None
    # an event this process never hears of (relayed elsewhere, a lost message): a hole
    taps = tasks.app.context.streams.hub.taps
    taps.remove(cache.tap)
    await place_order(tasks, agent, "10")  # no task: below the rule's threshold
    taps.append(cache.tap)
    assert cache._through == through
    loads = cache.loads
    await place_order(tasks, agent, "1600")
    assert cache.loads == loads + 1
    assert cache._through is not None and cache._through >= through + 2
    assert await _task_count(tasks) == 2


def test_hearing_a_rule_change_drops_the_rules() -> None:
    cache = RuleCache()
    cache.hears = True
    cache._rules, cache._through = {}, 10
    cache.tap([_envelope(11), _envelope(12)])
    assert cache._through == 12 and cache._rules == {}
    cache.tap([_envelope(13, AutomationRuleChanged.event_type)])
    assert cache._through == 13 and cache._rules is None
