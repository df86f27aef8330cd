"""The per-process cache of automation rules: no query per event, and no stale rule.

A rule change takes effect for the next event at once: in the process that made
it (its commit drops the cache) and in any other (it hears the rule's
``tasks.automation_rule.changed`` event, in log order, before any later event).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from crm2_tasks.events import AutomationRuleChanged
from crm2_tasks.models import AutomationRule, Task
from crm2_tasks.service.rule_cache import RuleCache, rule_cache
from sqlalchemy import func, select, update
from tasks_kit import API, Tasks
from test_tasks_automations import RULE, OrderPlaced, place_order, shop_app

from crm2_core.api import SYSTEM, Envelope, publish
from crm2_core.testing.statements import sent_to_postgresql


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


async def _heard_everything(tasks: Tasks, cache: RuleCache | None = None) -> int:
    """Wait until the hub has given its taps every logged event (settled events are
    committed by the relay; the hub may take them a moment later, its lock held by a
    poll of the log); with ``cache``, have it hold the rules as of the log's top, as a
    late-heard rule change may have dropped them, and return its ``through``."""
    top = max(e.position or 0 for e in await tasks.events())
    hub = tasks.app.context.streams.hub
    for _ in range(1000):  # 5 s at most
        if (hub.last_position or 0) >= top:
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError(f"the hub did not dispatch up to position {top}")
    if cache is None:
        return top
    async with tasks.app.context.session_factory() as session:
        await cache.rules_by_type(session, top + 1)
    assert cache._through == top
    return top


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


async def test_a_hole_in_what_was_heard_is_asked_of_the_log(crm2_app_factory: Any) -> None:
    """Events this process never heard of: one read of the log since ``through`` (no rule
    changed there) instead of the rules again."""
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    await place_order(tasks, agent, "1500")
    cache = rule_cache(tasks.app.context)
    through = await _heard_everything(tasks, cache)
    # an event this process never hears of (relayed elsewhere, a lost message): a hole
    taps = tasks.app.context.streams.hub.taps
    taps.remove(cache.tap)
    await place_order(tasks, agent, "10")  # no task: below the rule's threshold
    await _heard_everything(tasks)
    taps.append(cache.tap)
    assert cache._through == through
    loads, checks = cache.loads, cache.checks
    await place_order(tasks, agent, "1600")
    assert (cache.loads, cache.checks) == (loads, checks + 1)
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


async def test_a_worker_records_an_event_no_rule_applies_to_without_a_transaction(
    crm2_app_factory: Any,
) -> None:
    """A worker (one delivery at a time, the rules read from the database): an order no
    rule applies to is read about and recorded, no ``BEGIN``, no ``COMMIT``, no task; an
    order the rule applies to gets its task in the handler's transaction."""
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    created = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert created.status_code == 201, created.text
    await tasks.app.settle_events()
    await tasks.app.relay_by_hand()  # from here on, deliveries by hand, as a worker gets them
    context = tasks.app.context
    async with context.session_factory() as session:
        for total in ("99", "1500"):
            event = OrderPlaced(customer="Anna Berg", total=total, owner_id=agent.id)
            publish(session, event, subject=uuid.uuid4())
        await session.commit()
    small, big = await tasks.app.relay_by_hand()
    handler = "tasks.automations"
    rule_cache(context).drop()  # nothing heard: a worker's cache
    postgresql = context.engine.dialect.name == "postgresql"
    with sent_to_postgresql() as sent:
        assert await tasks.app.deliver(handler, small) == "skipped"
    kinds = [s.split()[0] for s in sent]
    # the log's top and the rules (plain reads), then the claim by itself
    assert kinds == (["SELECT", "SELECT", "INSERT"] if postgresql else []), sent
    assert await _task_count(tasks) == 0
    with sent_to_postgresql() as sent:
        assert await tasks.app.deliver(handler, big) == "applied"
    kinds = [s.split()[0].rstrip(";") for s in sent]
    # the rules as read for the first (no event since), the handler's own transaction
    assert not postgresql or (kinds[0], kinds[-1]) == ("BEGIN", "COMMIT"), sent
    assert await _task_count(tasks) == 1
    assert await tasks.app.applied(handler, small.id) and await tasks.app.applied(handler, big.id)
    assert await tasks.app.deliver(handler, big) == "duplicate"
    assert await _task_count(tasks) == 1


async def test_a_cache_that_hears_nothing_asks_the_log_whether_a_rule_changed(
    crm2_app_factory: Any,
) -> None:
    """A worker's cache: no hub feeds it. For an event after what it read, one read of the
    log since then answers (no rule change: the rules it keeps); a rule change there has
    the rules read again."""
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    created = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    await tasks.app.settle_events()
    context = tasks.app.context
    await tasks.app.relay_by_hand()
    cache = RuleCache()
    cache.hears = True  # as in a worker: the taps are registered, nothing calls them
    type_ = "shop.order.placed"

    async def publish_orders(count: int) -> list[Envelope]:
        async with context.session_factory() as session:
            for _ in range(count):
                order = OrderPlaced(customer="Anna Berg", total="5", owner_id=agent.id)
                publish(session, order, subject=uuid.uuid4())
            await session.commit()
        return await tasks.app.relay_by_hand()

    async with context.session_factory() as session:
        assert [r.name for r in await cache.rules_for(session, type_, None)] == [RULE["name"]]
    assert (cache.loads, cache.checks) == (1, 0)
    *_, last = await publish_orders(2)
    async with context.session_factory() as session:
        with sent_to_postgresql() as sent:
            assert [r.name for r in await cache.rules_for(session, type_, last.position)] == [
                RULE["name"]
            ]
    assert (cache.loads, cache.checks) == (1, 1)
    if context.engine.dialect.name == "postgresql":
        assert [s.split()[0] for s in sent] == ["SELECT"] and "core_event" in sent[0], sent
    assert cache._through == last.position
    # switched off by another process (no ORM write here), in the log before the next order
    async with context.session_factory() as session:
        rule_id = uuid.UUID(created.json()["id"])
        await session.execute(
            update(AutomationRule).where(AutomationRule.id == rule_id).values(enabled=False)
        )
        change = AutomationRuleChanged(rule_id=rule_id, name=RULE["name"], change="updated")
        publish(session, change, subject=rule_id, actor=SYSTEM)
        await session.commit()
    *_, after = await publish_orders(1)
    async with context.session_factory() as session:
        assert await cache.rules_for(session, type_, after.position) == ()
    assert (cache.loads, cache.checks) == (2, 2)
