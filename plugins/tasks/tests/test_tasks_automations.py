"""Automation rules as data, applied to other plugins' events: one task per (rule, event)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crm2_tasks.clock import set_clock
from crm2_tasks.models import AutomationRule, Task
from sqlalchemy import column, delete, select, table
from tasks_kit import API, Tasks, User, seed_shipped_rules

from crm2_core.api import Envelope, EventData, publish
from crm2_core.testing import EventRecord
from crm2_hookspecs import PluginManifest, hookimpl

FRIDAY_4PM = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)


class OrderPlaced(EventData, type="shop.order.placed", version=1):
    customer: str
    total: str
    owner_id: uuid.UUID


class ShopPlugin:
    """A stand-in for any other plugin: it declares an event type and answers for its
    orders (``shop.order``) through ``crm2_resolve_entity``, as a task's link needs."""

    manifest = PluginManifest(name="shop", title="Shop")

    def __init__(self) -> None:
        self.orders: set[str] = set()

    @hookimpl
    def crm2_event_types(self) -> Sequence[type]:
        return [OrderPlaced]

    @hookimpl
    def crm2_resolve_entity(
        self, kind: str, id: str, principal: Any, context: Any, session: Any
    ) -> Awaitable[Mapping[str, Any] | None] | None:
        if kind != "shop.order":
            return None  # not ours
        return self._order(id)

    async def _order(self, order_id: str) -> Mapping[str, Any] | None:
        return {"id": order_id} if order_id in self.orders else None


async def shop_app(crm2_app_factory: Any, shop: ShopPlugin | None = None) -> Tasks:
    extra = (shop or ShopPlugin(),)
    app = await crm2_app_factory(plugins=["tasks", "shop"], extra_plugins=extra)
    set_clock(app.context, lambda: FRIDAY_4PM)
    return Tasks(app)


RULE = {
    "name": "Call big buyers",
    "on": "shop.order.placed",
    "when": [{"field": "data.total", "op": "gte", "value": 1000}],
    "create_task": {
        "title": "Call {data.customer}",
        "assignee": "{data.owner_id}",
        "due_in": "1 business day",
        "priority": "high",
        "link": {"kind": "shop.order", "id": "{subject}"},
    },
}


async def place_order(
    tasks: Tasks, owner: User, total: str, shop: ShopPlugin | None = None
) -> uuid.UUID:
    order = uuid.uuid4()
    if shop is not None:
        shop.orders.add(str(order))  # the shop has the order the event is about
    async with tasks.app.context.session_factory() as session:
        event = OrderPlaced(customer="Anna Berg", total=total, owner_id=owner.id)
        publish(session, event, subject=order)
        await session.commit()
    await tasks.app.settle_events()
    return order


async def test_a_matching_event_creates_one_task_from_the_templates(crm2_app_factory: Any) -> None:
    shop = ShopPlugin()
    tasks = await shop_app(crm2_app_factory, shop)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    created = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["active"] is True
    order = await place_order(tasks, agent, "1500.00", shop)
    await place_order(tasks, agent, "99.00", shop)  # the condition does not hold
    mine = (await tasks.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert len(mine) == 1
    (task,) = mine
    assert task["title"] == "Call Anna Berg" and task["priority"] == "high"
    assert task["link"] == {"kind": "shop.order", "id": str(order)}
    assert task["due_at"] == "2026-03-30T16:00:00Z"  # Friday 16:00 + 1 business day
    assert task["creator_id"] is None and task["automation_rule_id"] == created.json()["id"]


async def test_triple_redelivery_creates_one_task(crm2_app_factory: Any) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    assert (
        await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    ).status_code == 201
    await place_order(tasks, agent, "5000")
    async with tasks.app.context.session_factory() as session:
        record = (
            await session.execute(
                select(EventRecord).where(EventRecord.type == "shop.order.placed")
            )
        ).scalar_one()
    envelope = Envelope.from_record(record)
    broker = tasks.app.context.events.broker
    for _ in range(2):  # the broker delivers the same event twice more
        await broker.deliver([envelope])
        await tasks.app.settle_events()
    # even with the core's applied-event record lost, the rule's own key holds
    async with tasks.app.context.session_factory() as session:
        await session.execute(delete(table("core_applied_event", column("event_id"))))
        await session.commit()
    await broker.deliver([envelope])
    await tasks.app.settle_events()
    async with tasks.app.context.session_factory() as session:
        rows = (await session.execute(select(Task))).scalars().all()
    assert len(rows) == 1


async def test_rules_for_events_nobody_emits_are_stored_but_inactive(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    unlinked = {
        **RULE,
        "create_task": {k: v for k, v in RULE["create_task"].items() if k != "link"},
    }
    response = await tasks.client.post(f"{API}/rules", json=unlinked, headers=admin.headers)
    assert response.status_code == 201 and response.json()["active"] is False
    listed = (await tasks.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    shipped = {r["builtin_key"]: r for r in listed if r["builtin_key"]}
    assert set(shipped) == {"deals-follow-up", "deals-policy-renewal"}
    assert all(not r["enabled"] and not r["active"] for r in shipped.values())


async def test_switching_a_shipped_rule_on(tasks: Tasks) -> None:
    admin = await tasks.user("admin")
    await seed_shipped_rules(tasks.app)
    listed = (await tasks.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    rule = next(r for r in listed if r["builtin_key"] == "deals-follow-up")
    headers = {**admin.headers, "If-Match": f'"v{rule["version"]}"'}
    on = await tasks.client.patch(
        f"{API}/rules/{rule['id']}", json={"enabled": True}, headers=headers
    )
    assert on.status_code == 200 and on.json()["enabled"] is True
    assert on.json()["active"] is False  # deals is not enabled in this app


async def test_bad_rules_are_refused(tasks: Tasks) -> None:
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    bad = [
        {**RULE, "on": "tasks.task.created"},  # a loop
        {**RULE, "on": "not-an-event"},
        {**RULE, "when": [{"field": "data.__class__", "op": "eq", "value": 1}]},
        {**RULE, "when": [{"field": "data.x", "op": "matches", "value": 1}]},
        {**RULE, "create_task": {**RULE["create_task"], "title": "Call {data.customer!r}"}},
        {**RULE, "create_task": {**RULE["create_task"], "due_in": "soonish"}},
        # past the business calendar's ten-year horizon: every event would fail
        {**RULE, "create_task": {**RULE["create_task"], "due_in": "9999 business days"}},
        {**RULE, "create_task": {**RULE["create_task"], "link": {"kind": "x", "id": "1"}}},
    ]
    for body in bad:
        response = await tasks.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 422, (body, response.text)
    assert (
        await tasks.client.post(f"{API}/rules", json=RULE, headers=agent.headers)
    ).status_code == 403


async def test_a_stored_rule_that_cannot_make_its_task_leaves_the_other_rules_working(
    crm2_app_factory: Any,
) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    good = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert good.status_code == 201, good.text
    async with tasks.app.context.session_factory() as session:  # saved before the check
        action = {**RULE["create_task"], "title": "Later", "due_in": "9999 business days"}
        session.add(
            AutomationRule(
                name="bad", on_event="shop.order.placed", conditions=[], action=action, enabled=True
            )
        )
        await session.commit()
    await place_order(tasks, agent, "1500.00")  # settles: the handler did not fail
    mine = (await tasks.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert [task["title"] for task in mine] == ["Call Anna Berg"]


async def test_a_rule_linking_a_record_type_no_enabled_plugin_provides_is_422(
    tasks: Tasks,
) -> None:
    """Without the shop plugin nobody answers for ``shop.order``: no task could follow it."""
    admin = await tasks.user("admin")
    before = (await tasks.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    refused = await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("tasks-invalid-rule")
    assert "'shop.order'" in refused.json()["detail"]
    after = (await tasks.client.get(f"{API}/rules", headers=admin.headers)).json()["items"]
    assert after == before
    # a change is checked as a create is
    rule = {**RULE, "name": "Unlinked", "create_task": {"title": "Call"}}
    made = await tasks.client.post(f"{API}/rules", json=rule, headers=admin.headers)
    assert made.status_code == 201, made.text
    changed = await tasks.client.patch(
        f"{API}/rules/{made.json()['id']}",
        json={"create_task": RULE["create_task"]},
        headers={**admin.headers, "If-Match": made.headers["ETag"]},
    )
    assert changed.status_code == 422, changed.text
    kept = await tasks.client.get(f"{API}/rules/{made.json()['id']}", headers=admin.headers)
    assert kept.json()["create_task"].get("link") is None
    # a record type an enabled plugin provides (the core's users) is fine
    user_link = {"kind": "auth.user", "id": str(admin.id)}
    linked = {**rule, "name": "Users", "create_task": {"title": "Call", "link": user_link}}
    ok = await tasks.client.post(f"{API}/rules", json=linked, headers=admin.headers)
    assert ok.status_code == 201, ok.text


async def test_a_rule_linking_a_fixed_record_that_does_not_exist_is_422(
    crm2_app_factory: Any,
) -> None:
    shop = ShopPlugin()
    tasks = await shop_app(crm2_app_factory, shop)
    admin = await tasks.user("admin")
    known = str(uuid.uuid4())
    shop.orders.add(known)

    async def save(name: str, order_id: str) -> Any:
        action = {**RULE["create_task"], "link": {"kind": "shop.order", "id": order_id}}
        body = {**RULE, "name": name, "create_task": action}
        return await tasks.client.post(f"{API}/rules", json=body, headers=admin.headers)

    missing = await save("Missing", str(uuid.uuid4()))
    assert missing.status_code == 422, missing.text
    assert "no shop.order" in missing.json()["detail"]
    not_an_id = await save("Not an id", "order 12")
    assert not_an_id.status_code == 422, not_an_id.text
    assert (await save("Known", known)).status_code == 201
    assert (await save("Templated", "{subject}")).status_code == 201


async def test_an_event_whose_number_is_nan_fails_no_rule(crm2_app_factory: Any) -> None:
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    assert (
        await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    ).status_code == 201
    every = {**RULE, "name": "Every order", "when": [], "create_task": {"title": "Thank"}}
    every["create_task"]["assignee"] = "{data.owner_id}"
    assert (
        await tasks.client.post(f"{API}/rules", json=every, headers=admin.headers)
    ).status_code == 201
    await place_order(tasks, agent, "NaN")  # settles: the handler did not fail
    mine = (await tasks.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert [task["title"] for task in mine] == ["Thank"]


async def test_a_rule_task_whose_linked_record_does_not_exist_is_made_without_the_link(
    crm2_app_factory: Any,
) -> None:
    """As a series' occurrence: the link is checked when the task is made, for its assignee."""
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    assert (
        await tasks.client.post(f"{API}/rules", json=RULE, headers=admin.headers)
    ).status_code == 201
    order = await place_order(tasks, agent, "1500.00")  # an order the shop does not have
    mine = (await tasks.client.get(f"{API}/views/mine", headers=agent.headers)).json()["items"]
    assert [(task["title"], task["link"]) for task in mine] == [("Call Anna Berg", None)]
    (created,) = await tasks.events("tasks.task.created")
    assert created.data["link_dropped"] == {
        "kind": "shop.order",
        "id": str(order),
        "reason": "gone_or_not_visible",
    }


async def test_a_rule_with_a_fixed_assignee_who_could_never_get_its_tasks_is_422(
    crm2_app_factory: Any,
) -> None:
    """A fixed assignee is checked when the rule is saved, as an SLA policy's escalation
    target is; a template ({data.owner_id}) only when the event comes."""
    tasks = await shop_app(crm2_app_factory)
    admin, agent = await tasks.user("admin"), await tasks.user("agent")
    stranger = await tasks.app.create_user()  # active, no role: may not read tasks

    async def save(name: str, assignee: str) -> Any:
        action = {"title": "Call", "assignee": assignee}
        body = {**RULE, "name": name, "create_task": action}
        return await tasks.client.post(f"{API}/rules", json=body, headers=admin.headers)

    for name, assignee, problem in (
        ("Nobody", str(uuid.uuid4()), "tasks-invalid-assignee"),
        ("Stranger", str(stranger), "tasks-assignee-not-permitted"),
        ("Not an id", "bob", "tasks-invalid-rule"),
    ):
        refused = await save(name, assignee)
        assert refused.status_code == 422, (name, refused.text)
        assert refused.json()["type"].endswith(problem), refused.text
    assert (await save("Agent", str(agent.id))).status_code == 201
    assert (await save("Owner", "{data.owner_id}")).status_code == 201


async def test_an_ordering_condition_on_a_value_that_is_no_number_or_text_is_422(
    crm2_app_factory: Any,
) -> None:
    """As notifications' conditions: gt/gte/lt/lte with null, true, a list or an object could
    never hold, so the rule is refused when saved, naming the condition, and nothing is stored."""
    tasks = await shop_app(crm2_app_factory)
    admin = await tasks.user("admin")
    h = admin.headers
    before = (await tasks.client.get(f"{API}/rules", headers=h)).json()["items"]
    when = [{"field": "data.customer", "op": "exists"}, {"field": "data.total", "op": "gt"}]
    refused = await tasks.client.post(f"{API}/rules", json={**RULE, "when": when}, headers=h)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("tasks-invalid-rule")
    assert "condition 2" in problem["detail"] and "data.total" in problem["detail"]
    assert (await tasks.client.get(f"{API}/rules", headers=h)).json()["items"] == before
    made = await tasks.client.post(f"{API}/rules", json=RULE, headers=h)
    assert made.status_code == 201, made.text
    bad = [{"field": "data.total", "op": "lte", "value": [1000]}]
    patched = await tasks.client.patch(
        f"{API}/rules/{made.json()['id']}",
        json={"when": bad},
        headers={**h, "If-Match": made.headers["ETag"]},
    )
    assert patched.status_code == 422, patched.text
    assert "a list" in patched.json()["detail"]


async def test_a_total_that_is_no_number_never_meets_a_numeric_condition(
    crm2_app_factory: Any,
) -> None:
    """A number compares only with a number: "n/a" is not "at least 1000" because "n" sorts
    after "1" as text."""
    tasks = await shop_app(crm2_app_factory)
    admin, owner = await tasks.user("admin"), await tasks.user("agent")
    rule = {**RULE, "when": [{"field": "data.total", "op": "gte", "value": "1000"}]}
    rule["create_task"] = {**RULE["create_task"], "link": None}
    made = await tasks.client.post(f"{API}/rules", json=rule, headers=admin.headers)
    assert made.status_code == 201, made.text
    await place_order(tasks, owner, "n/a")
    await place_order(tasks, owner, "1500.00")
    mine = (await tasks.client.get(f"{API}/views/mine", headers=owner.headers)).json()["items"]
    assert len(mine) == 1


async def test_a_condition_value_that_is_no_finite_number_is_refused(crm2_app_factory: Any) -> None:
    """Python's JSON reads NaN, Infinity and 1e400 (a float overflow) although JSON has no
    such number; PostgreSQL's json type refuses them, so storing one was a 500 there. The
    core's body gate refuses them for every route (400 ``non-finite-number``); the rule's
    own check (422) stays for conditions built in code."""
    tasks = await shop_app(crm2_app_factory)
    admin = await tasks.user("admin")
    h = {**admin.headers, "content-type": "application/json"}
    before = (await tasks.client.get(f"{API}/rules", headers=h)).json()["items"]
    for op, value in (
        ("gt", "NaN"),
        ("lte", "Infinity"),
        ("eq", "-Infinity"),
        ("in", "[1, 1e400]"),
    ):
        when = f'[{{"field": "data.total", "op": "{op}", "value": {value}}}]'
        action = '{"title": "x"}'
        body = f'{{"name": "odd", "on": "{RULE["on"]}", "when": {when}, "create_task": {action}}}'
        refused = await tasks.client.post(f"{API}/rules", content=body, headers=h)
        assert refused.status_code == 400, (value, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:crm2:problem:non-finite-number", refused.text
    assert (await tasks.client.get(f"{API}/rules", headers=h)).json()["items"] == before


async def test_a_condition_value_nested_too_deep_is_a_422_not_a_500(tasks: Tasks) -> None:
    """600 nested lists made the core's check of the body recurse past Python's limit (a 500);
    the core now refuses a body past 128 levels, tasks a condition value past 16."""
    admin = await tasks.user("admin")
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    for value in (deep, {"a": deep}):
        body = {**RULE, "when": [{"field": "data.x", "op": "contains", "value": value}]}
        response = await tasks.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 422, response.text
        assert "16 deep" in response.text
    fine: Any = [[[1]]]
    unlinked = {k: v for k, v in RULE["create_task"].items() if k != "link"}
    when = [{"field": "data.x", "op": "contains", "value": fine}]
    body = {**RULE, "when": when, "create_task": unlinked}
    made = await tasks.client.post(f"{API}/rules", json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    listed = await tasks.client.get(f"{API}/rules", headers=admin.headers)
    assert [r["when"][0]["value"] for r in listed.json()["items"] if r["name"] == RULE["name"]] == [
        fine
    ]
