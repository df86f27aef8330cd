"""The rules engine: event type + conditions → sandboxed templates → recipients → the feed."""

from __future__ import annotations

import uuid
from typing import Any

import ping_plugin
import pytest
from crm2_notifications.models import Delivery, Notification, Rule, Webhook
from crm2_notifications.service import engine
from crm2_notifications.service.rules import warn_unusable_rules
from notifications_kit import API, Notifications, shipped_rule
from ping_plugin import ThingHappened
from sqlalchemy import update

from crm2_core.api import Envelope, publish
from crm2_core.testing.statements import sent_to_postgresql


async def test_a_matching_event_puts_a_rendered_notification_in_the_owners_feed(
    notifications: Notifications,
) -> None:
    admin, owner, other = await notifications.users("admin", "agent", "agent")
    await notifications.rule(
        admin,
        template={
            "title": "{{ data.title }} for {{ record.name }}",
            "body": "value {{ data.value }}",
            "link": "/ping/{{ subject }}",
        },
        conditions=[{"field": "data.value", "op": "gte", "value": 10}],
    )
    await notifications.ping(admin, title="Big", value=12, owner_id=owner.id)
    await notifications.ping(admin, title="Small", value=3, owner_id=owner.id)  # condition fails
    await notifications.settle()

    (item,) = await notifications.feed(owner)
    assert item["title"] == "Big for Big" and item["body"] == "value 12"
    assert item["link"].startswith("/ping/") and item["read_at"] is None
    assert await notifications.feed(other) == []


async def test_a_rendered_link_is_kept_only_as_a_path_or_an_http_url(
    notifications: Notifications,
) -> None:
    """The link comes from event data a user may type: a ``javascript:`` (or ``data:``,
    or protocol-relative) one must not reach the feed's or an e-mail's ``href``."""
    admin, owner = await notifications.users("admin", "agent")
    await notifications.rule(
        admin, template={"title": "{{ data.title }}", "link": "{{ data.title }}"}
    )
    links = {
        "/deals/42": "/deals/42",
        "https://example.com/x": "https://example.com/x",
        " HTTP://example.com/y ": "HTTP://example.com/y",
        "javascript:alert(1)": None,
        "JaVaScRiPt:alert(1)": None,
        "java\tscript:alert(1)": None,
        "data:text/html,<script>alert(1)</script>": None,
        "//evil.example/": None,
        "/\\evil.example/": None,
        "vbscript:msgbox": None,
    }
    for title in links:
        await notifications.ping(admin, title=title, owner_id=owner.id)
    await notifications.settle()
    found = {item["title"]: item["link"] for item in await notifications.feed(owner, limit=50)}
    assert found == links


async def test_a_title_rendering_blank_falls_back_to_the_rules_name(
    notifications: Notifications,
) -> None:
    """An empty title (a value missing from this event) made a feed entry without a
    title, and a Telegram message the Bot API refuses for good (400 "text is empty")."""
    admin, owner = await notifications.users("admin", "agent")
    await notifications.rule(admin, name="Thing news", template={"title": " {{ data.nothing }} "})
    await notifications.ping(admin, title="x", owner_id=owner.id)
    await notifications.settle()
    (item,) = await notifications.feed(owner)
    assert item["title"] == "Thing news"


async def test_a_template_rendering_nul_stores_a_replacement_and_other_rules_still_fire(
    notifications: Notifications,
) -> None:
    admin, owner = await notifications.users("admin", "agent")
    await notifications.rule(admin, name="good")
    await notifications.rule(
        admin, name="nul", template={"title": '{{ "%c"|format(0) }}!', "body": "{{ data.title }}"}
    )
    await notifications.ping(admin, title="Hello", owner_id=owner.id)
    await notifications.settle()

    titles = sorted(item["title"] for item in await notifications.feed(owner))
    assert titles == ["Hello", "\ufffd!"]


async def test_redelivered_event_makes_no_second_notification(notifications: Notifications) -> None:
    from crm2_notifications.service import engine
    from sqlalchemy import select

    from crm2_core.testing import EventRecord

    admin, owner = await notifications.user("admin"), await notifications.user("agent")
    await notifications.rule(admin, channels=["inapp"])
    await notifications.ping(admin, owner_id=owner.id)
    await notifications.settle()
    async with notifications.context.session_factory() as session:
        record = (
            await session.execute(
                select(EventRecord).where(EventRecord.type == "ping.thing.happened")
            )
        ).scalar_one()
        envelope = {
            "id": str(record.id),
            "type": record.type,
            "subject": record.subject,
            "data": record.data,
            "actor": {"kind": "user"},
        }
        assert await engine.apply(session, notifications.context, envelope, record.id) == 0
        await session.commit()
    assert len(await notifications.rows(Notification)) == 1
    assert await notifications.rows(Delivery) == []


async def test_recipients_by_role_user_list_and_data_field(notifications: Notifications) -> None:
    admin = await notifications.user("admin")
    manager, listed, owner, bystander = await notifications.users(
        "manager", "viewer", "agent", "agent"
    )
    await notifications.rule(
        admin,
        recipients={"roles": ["manager"], "users": [str(listed.id)], "data_fields": ["owner_id"]},
    )
    await notifications.ping(admin, owner_id=owner.id)
    await notifications.settle()
    for user in (manager, listed, owner):
        assert len(await notifications.feed(user)) == 1
    assert await notifications.feed(bystander) == []


async def test_templates_cannot_run_code(notifications: Notifications) -> None:
    admin, owner = await notifications.user("admin"), await notifications.user("agent")
    await notifications.rule(
        admin,
        template={
            "title": "{{ ''.__class__.__mro__ }}|{{ 'x' * 100000 }}",
            "body": "{{ data.nope.deeper }}-{{ range.__globals__ }}",
        },
    )
    await notifications.ping(admin, owner_id=owner.id)
    await notifications.settle()
    (item,) = await notifications.feed(owner)
    assert "class" not in item["title"] and len(item["title"]) < 100
    assert "globals" not in item["body"]


async def test_bad_rules_are_422_and_change_nothing(notifications: Notifications) -> None:
    admin = await notifications.user("admin")
    base = {
        "name": "r",
        "event_type": "ping.thing.happened",
        "template": {"title": "x"},
        "recipients": {},
    }
    bad = [
        {**base, "template": {"title": "{% for %}"}},
        {**base, "channels": ["pigeon"]},
        {**base, "conditions": [{"field": "Data..x", "op": "eq"}]},
        {**base, "event_type": "notifications.delivery.failed"},
        {**base, "event_type": "not an event"},
        {**base, "name": "\x00"},
    ]
    for body in bad:
        response = await notifications.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    listed = await notifications.client.get(f"{API}/rules", headers=admin.headers)
    keys = [r["builtin_key"] for r in listed.json()["items"]]
    assert sorted(keys) == [  # the shipped rules only: none of the bad ones
        "notifications:auth-login-delayed",
        "notifications:auth-login-denied",
        "ping:thing-happened",
    ]


async def test_an_order_condition_with_an_object_or_list_value_is_refused_when_saved(
    notifications: Notifications,
) -> None:
    admin = await notifications.user("admin")
    base = {
        "name": "big",
        "event_type": "ping.thing.happened",
        "template": {"title": "x"},
        "recipients": {},
    }
    before = len(await notifications.rows(Rule))
    for op, value in (("gt", {"a": 1}), ("lte", [1, 2]), ("gte", True), ("lt", None)):
        when = [{"field": "data.status", "op": "eq", "value": "open"}]
        when.append({"field": "data.value", "op": op, "value": value})
        body = {**base, "conditions": when}
        response = await notifications.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 422, (op, value, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert f"condition 2 (data.value {op})" in response.json()["detail"], response.text
    assert len(await notifications.rows(Rule)) == before
    rule = await notifications.rule(admin)  # and on a change of a stored rule
    fresh = {**admin.headers, "If-Match": f'"v{rule["version"]}"'}
    bad = {"conditions": [{"field": "data.value", "op": "gt", "value": [1000]}]}
    patched = await notifications.client.patch(f"{API}/rules/{rule['id']}", json=bad, headers=fresh)
    assert patched.status_code == 422, patched.text
    for fine in (1000, "1000.5", "m"):  # a number, or text (compared as numbers or as text)
        when = [{"field": "data.value", "op": "gt", "value": fine}]
        body = {**base, "name": f"fine {fine}", "conditions": when}
        response = await notifications.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 201, (fine, response.text)


async def test_a_stored_order_condition_with_an_unorderable_value_is_flagged_and_logged(
    notifications: Notifications, caplog: pytest.LogCaptureFixture
) -> None:
    """Rules stored before such values were refused stay as their admins left them (no
    data migration guesses a number for them), but say why they can never fire: the rule
    lists ``problems``, and each start-up logs a warning naming them."""
    admin = await notifications.user("admin")
    rule = await notifications.rule(admin, name="legacy")
    fine = await notifications.rule(admin, name="fine")
    assert rule["problems"] == [] and fine["problems"] == []
    legacy = [
        {"field": "data.status", "op": "eq", "value": "open"},
        {"field": "data.value", "op": "gt", "value": {"a": 1}},
    ]
    async with notifications.context.session_factory() as session:  # saved by an older crm2
        await session.execute(
            update(Rule).where(Rule.id == uuid.UUID(rule["id"])).values(conditions=legacy)  # type: ignore[arg-type]
        )
        await session.commit()
    shown = await notifications.client.get(f"{API}/rules/{rule['id']}", headers=admin.headers)
    assert shown.status_code == 200, shown.text
    (problem,) = shown.json()["problems"]
    assert "condition 2 (data.value gt)" in problem and "an object" in problem
    listed = await notifications.client.get(f"{API}/rules", headers=admin.headers)
    by_name = {r["name"]: r["problems"] for r in listed.json()["items"]}
    assert by_name["legacy"] == [problem] and by_name["fine"] == []
    caplog.set_level("WARNING", logger="crm2_notifications")
    assert await warn_unusable_rules(notifications.context) == 1
    (logged,) = [r for r in caplog.records if "legacy" in r.getMessage()]
    assert logged.levelname == "WARNING" and "condition 2 (data.value gt)" in logged.getMessage()
    # fixing the conditions clears it
    fresh = {**admin.headers, "If-Match": shown.headers["etag"]}
    ok = [{"field": "data.value", "op": "gt", "value": 1000}]
    fixed = await notifications.client.patch(
        f"{API}/rules/{rule['id']}", json={"conditions": ok}, headers=fresh
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["problems"] == []


async def test_rules_are_admin_only_and_versioned(notifications: Notifications) -> None:
    admin, agent = await notifications.user("admin"), await notifications.user("agent")
    assert (
        await notifications.client.get(f"{API}/rules", headers=agent.headers)
    ).status_code == 403
    rule = await notifications.rule(admin)
    url = f"{API}/rules/{rule['id']}"
    stale = {**admin.headers, "If-Match": '"v0"'}
    assert (
        await notifications.client.patch(url, json={"enabled": False}, headers=stale)
    ).status_code == 412
    fresh = {**admin.headers, "If-Match": f'"v{rule["version"]}"'}
    for nulled in ({"name": None}, {"template": None}, {"enabled": None}):
        refused = await notifications.client.patch(url, json=nulled, headers=fresh)
        assert refused.status_code == 422, (nulled, refused.text)
    changed = await notifications.client.patch(url, json={"enabled": False}, headers=fresh)
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert (await notifications.client.delete(url, headers=admin.headers)).status_code == 204
    assert (await notifications.client.get(url, headers=admin.headers)).status_code == 404


async def test_a_plugins_shipped_rule_is_stored_once_and_works(
    notifications: Notifications,
) -> None:
    from crm2_notifications.service.rules import sync_default_rules
    from notifications_kit import shipped_rule

    assert await sync_default_rules(notifications.context) == 0  # stored at start-up already
    await shipped_rule(notifications.app, enabled=True)
    admin, owner = await notifications.user("admin"), await notifications.user("agent")
    await notifications.ping(admin, title="Kettle", value=2, owner_id=owner.id)
    await notifications.settle()
    (item,) = await notifications.feed(owner)
    assert item["title"] == "Kettle happened" and item["body"] == "Value 2 for Kettle"


async def test_a_shipped_rule_whose_template_cannot_render_stops_start_up(
    crm2_app_factory: Any,
) -> None:
    """A plugin's shipped rule is checked like an admin's: a template that does not parse
    would otherwise be stored and render ``[template error]`` at every event."""
    import types

    from crm2_hookspecs import PluginManifest, hookimpl

    shipping = types.ModuleType("shipping_plugin")
    shipping.manifest = PluginManifest(name="shipping", title="Ships a broken rule")  # type: ignore[attr-defined]

    @hookimpl(optionalhook=True)
    def crm2_notifications_default_rules() -> list[dict[str, Any]]:
        return [
            {
                "key": "broken",
                "name": "Broken",
                "event_type": "ping.thing.happened",
                "template": {"title": "{{ data.title"},
                "recipients": {"roles": ["admin"]},
            }
        ]

    shipping.crm2_notifications_default_rules = crm2_notifications_default_rules  # type: ignore[attr-defined]
    with pytest.raises(Exception, match=r"shipping.*broken.*template") as raised:
        await crm2_app_factory(plugins=["notifications", "shipping"], extra_plugins=(shipping,))
    assert "500" not in str(raised.value)


async def _relayed_by_hand(n: Notifications, values: list[int], owner: Any) -> list[Envelope]:
    """Ping events committed and relayed, no handler run yet: a worker's deliveries."""
    context = n.context
    await n.app.relay_by_hand()  # the in-process handlers stop: nothing is applied meanwhile
    async with context.session_factory() as session:
        for value in values:
            subject = str(uuid.uuid4())
            thing = {"kind": "ping.thing", "id": subject, "name": f"v{value}"}
            ping_plugin.THINGS[subject] = {**thing, "owner_id": str(owner.id)}
            happened = ThingHappened(title=f"v{value}", value=value, owner_id=owner.id)
            publish(session, happened, subject=subject)
        await session.commit()
    return await n.app.relay_by_hand()


async def test_a_worker_records_an_event_nothing_applies_to_in_one_read_and_one_write(
    notifications: Notifications,
) -> None:
    """The rules handler, a delivery at a time: an event no rule's conditions take and no
    webhook wants is read about once and recorded by itself (no ``BEGIN``, no
    ``COMMIT``); one a rule takes is applied in the handler's transaction."""
    n = notifications
    admin, owner = await n.users("admin", "agent")
    await n.rule(admin, conditions=[{"field": "data.value", "op": "gte", "value": 10}])
    small, big = await _relayed_by_hand(n, [3, 12], owner)
    context = n.context
    handler = "notifications.rules"
    postgresql = context.engine.dialect.name == "postgresql"
    with sent_to_postgresql() as sent:
        assert await n.app.deliver(handler, small) == "skipped"
    kinds = [s.split()[0] for s in sent]
    assert kinds == (["SELECT", "INSERT"] if postgresql else []), sent
    with sent_to_postgresql() as sent:
        assert await n.app.deliver(handler, big) == "applied"
    kinds = [s.split()[0].rstrip(";") for s in sent]
    assert not postgresql or (kinds[1], kinds[-1]) == ("BEGIN", "COMMIT"), sent
    (note,) = await n.rows(Notification)
    assert note.event_id == big.id and note.user_id == owner.id
    assert await n.app.applied(handler, small.id) and await n.app.applied(handler, big.id)


async def test_nothing_for_an_event_is_answered_by_rules_plugins_and_webhooks(
    notifications: Notifications,
) -> None:
    """What makes an event something to the rules handler: an enabled rule on its type whose
    conditions it meets (of a plugin that is on), or an active webhook whose patterns
    take it."""
    n = notifications
    admin = await n.user("admin")
    context = n.context

    async def nothing_for(value: int, event_type: str = "ping.thing.happened") -> bool:
        envelope = {"type": event_type, "data": {"value": value}, "subject": "s"}
        async with context.session_factory() as session:
            return await engine.nothing_for(session, context, event_type, lambda: envelope)

    assert await nothing_for(50)  # the shipped rule is off, nothing else exists
    await shipped_rule(n.app, enabled=True)
    assert not await nothing_for(50)
    await shipped_rule(n.app, enabled=False)
    rule = await n.rule(admin, conditions=[{"field": "data.value", "op": "gte", "value": 10}])
    assert await nothing_for(3) and not await nothing_for(12)
    assert await nothing_for(12, "notifications.deliveries.queued")  # its own: never
    async with context.session_factory() as session:
        rule_id = uuid.UUID(rule["id"])
        await session.execute(update(Rule).where(Rule.id == rule_id).values(enabled=False))
        await session.commit()
    assert await nothing_for(12)
    async with context.session_factory() as session:
        hook = Webhook(name="all pings", url="http://127.0.0.1:9/hook", event_types=["ping.*"])
        session.add(hook)
        await session.commit()
    assert not await nothing_for(3)
    async with context.session_factory() as session:
        await session.execute(update(Webhook).values(active=False))
        await session.commit()
    assert await nothing_for(3)


def test_a_template_printing_in_a_long_loop_stops_at_the_output_limit() -> None:
    import tracemalloc

    from crm2_notifications import templates

    loop = '{% for i in range(100000) %}{{ "x" * 5000 }}{% endfor %}'  # 500 MB of text
    tracemalloc.start()
    try:
        text = templates.render(loop, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "x" * templates.MAX_OUTPUT
    assert peak < 20_000_000


def test_silent_nested_loops_stop_at_the_template_budget_quickly() -> None:
    import time

    from crm2_notifications import templates

    burners = [
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in range(3000)|list %}{% for b in range(3000)|list %}{% endfor %}{% endfor %}",
        "{% for a in range(10000) %}{{ range(10000)|list|length }}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",  # no end: Python's recursion limit
    ]
    for source in burners:
        started = time.perf_counter()
        text = templates.render(source, {})
        assert time.perf_counter() - started < 2, source
        assert text.startswith("[template error: "), (source, text[:80])
    started = time.perf_counter()  # an ordinary loop over the event's data is unaffected
    items = {"lines": [{"n": i} for i in range(200)]}
    text = templates.render("{% for l in data.lines %}{{ l.n }},{% endfor %}", {"data": items})
    assert text == "".join(f"{i}," for i in range(200))
    assert time.perf_counter() - started < 0.5


def test_templates_cannot_build_huge_values_where_the_output_limit_does_not_look() -> None:
    import tracemalloc

    from crm2_notifications import templates

    tens = "{% set a = 'x' * 5000 %}" + "".join(
        "{%% set %s = %s %%}" % (b, "~".join([a] * 10))  # noqa: UP031
        for a, b in ("ab", "bc", "cd", "de")
    )
    bombs = [
        '{{ "a"|center(400000000)|length }}',
        '{{ "a".ljust(400000000)|length }}',
        tens + "{{ e|length }}",  # 5,000 x 10**4 characters by ~
        tens.replace("~", "+") + "{{ e|length }}",
        '{{ "%400000000s"|format(1)|length }}',
        '{{ ("%400000000s" % 1)|length }}',
        '{{ "{:>400000000}".format(1)|length }}',
        '{{ "{:>{}}".format(1, 400000000)|length }}',
        '{{ ("x" * 5000)|replace("x", "y" * 5000)|length }}',
        '{{ ("x" * 5000).replace("x", "y" * 5000)|length }}',
        '{% macro m() %}{% for i in range(50000) %}{{ "x" * 5000 }}{% endfor %}{% endmacro %}'
        "{{ m()|length }}",
        '{% set t %}{% for i in range(50000) %}{{ "x" * 5000 }}{% endfor %}{% endset %}'
        "{{ t|length }}",
    ]
    for source in bombs:
        tracemalloc.start()
        try:
            text = templates.render(source, {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert text == "[template error: TemplateTooCostly]", (source, text[:80])
        assert peak < 20_000_000, (source, peak)
    ordinary = (
        '{{ "%05.2f"|format(3.14159) }} {{ "{:>4}".format("ab") }} {{ "a b"|replace(" ", "_") }} '
        '{{ "%s-%d" % ("a", 5) }} {{ data.n|string }} {{ data.n|round(1) }} {{ [1] + [2] }} '
        '{{ "x"|center(3) }}|{{ 7 % 3 }} {{ "a" ~ data.n }}'
    )
    assert templates.render(ordinary, {"data": {"n": 123456789}}) == (
        "03.14   ab a_b a-5 123456789 123456789 [1, 2]  x |1 a123456789"
    )


async def test_a_template_over_the_budget_is_refused_when_saved(
    notifications: Notifications,
) -> None:
    admin = await notifications.user("admin")
    burner = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    body = {
        "name": "burner",
        "event_type": "ping.thing.happened",
        "template": {"title": "x", "body": burner},
        "recipients": {},
    }
    response = await notifications.client.post(f"{API}/rules", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert "budget" in response.json()["detail"]
    created = await notifications.rule(admin, template={"title": "ok"})
    current = await notifications.client.get(f"{API}/rules/{created['id']}", headers=admin.headers)
    headers = {**admin.headers, "If-Match": current.headers["ETag"]}
    patch = {"template": {"title": "x", "body": burner}}
    patched = await notifications.client.patch(
        f"{API}/rules/{created['id']}", json=patch, headers=headers
    )
    assert patched.status_code == 422, patched.text


async def test_a_bad_record_id_template_is_refused_when_saved(
    notifications: Notifications,
) -> None:
    """The record's ``id`` is a template too: one that cannot render would make the rule
    reach nobody, silently, at every event."""
    admin = await notifications.user("admin")
    burner = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    for ident, said in (("{{ subject", "template"), (burner, "budget")):
        body = {
            "name": "bad record id",
            "event_type": "ping.thing.happened",
            "template": {"title": "x"},
            "recipients": {"record": {"kind": "ping.thing", "id": ident}},
        }
        response = await notifications.client.post(f"{API}/rules", json=body, headers=admin.headers)
        assert response.status_code == 422, response.text
        assert said in response.json()["detail"]
    created = await notifications.rule(admin)
    current = await notifications.client.get(f"{API}/rules/{created['id']}", headers=admin.headers)
    headers = {**admin.headers, "If-Match": current.headers["ETag"]}
    patch = {"recipients": {"record": {"kind": "ping.thing", "id": "{% if %}"}}}
    patched = await notifications.client.patch(
        f"{API}/rules/{created['id']}", json=patch, headers=headers
    )
    assert patched.status_code == 422, patched.text
    again = await notifications.client.get(f"{API}/rules/{created['id']}", headers=admin.headers)
    assert again.json()["recipients"] == created["recipients"]


async def test_a_template_over_the_budget_at_run_time_fails_only_its_own_text(
    notifications: Notifications,
) -> None:
    admin, owner = await notifications.users("admin", "agent")
    # over the budget only with the event's data, so saving it passes
    burner = (
        "{% for a in range(data.value) %}{% for b in range(data.value) %}{% endfor %}{% endfor %}"
    )
    await notifications.rule(admin, template={"title": "{{ data.title }}", "body": burner})
    await notifications.ping(admin, title="Still here", owner_id=owner.id, value=10000)
    await notifications.settle()
    (item,) = await notifications.feed(owner)
    assert item["title"] == "Still here"
    assert item["body"].startswith("[template error: ")


async def test_no_feed_entry_or_delivery_is_made_for_someone_without_notifications_read(
    notifications: Notifications,
) -> None:
    """They could never read it: the entry would only pile up (and its deliveries be skipped)."""
    n = notifications
    admin, kept = await n.users("admin", "agent")
    created = await n.client.post(
        "/api/v1/auth/roles",
        json={"name": "outsider", "description": "no notifications", "permissions": []},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    outsider = await n.user("outsider")
    await n.rule(
        admin,
        channels=["inapp", "email"],
        recipients={"users": [str(outsider.id), str(kept.id)]},
    )
    await n.ping(admin, title="Hello")
    await n.settle()
    assert {row.user_id for row in await n.rows(Notification)} == {kept.id}
    assert {row.user_id for row in await n.rows(Delivery)} == {kept.id}


async def test_a_slow_render_does_not_hold_up_a_delivery_sent_meanwhile(
    crm2_app_factory: Any,
) -> None:
    """A render may take its whole budget (0.5 s a text); it runs beside the event loop,
    so a delivery that starts while it runs is sent at once, not after it.

    The render's data holds the render until the delivery is done (10 s at most): on the
    event loop that wait would hold the delivery too, and time out."""
    import asyncio
    import threading

    from crm2_notifications.channels.webhook import WebhookChannel
    from crm2_notifications.testing import message_for
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from crm2_core.testing.servers import local_server

    ping_plugin.THINGS.clear()
    app = await crm2_app_factory(
        plugins=["notifications", "ping"],
        extra_plugins=(ping_plugin,),
        plugin_settings={"notifications": {"webhook_allow_private_targets": True}},
    )
    await shipped_rule(app, enabled=False)
    n = Notifications(app)
    admin, owner = await n.users("admin", "agent")
    await n.rule(
        admin,
        template={"title": "slow", "body": "{{ data.numbers|sum }}"},
        recipients={"users": [str(owner.id)]},
    )
    rendering = threading.Event()
    delivered = threading.Event()
    held: list[bool] = []  # whether the render saw the delivery done while it waited

    class Numbers:  # a render that waits, in the middle, for the delivery
        def __iter__(self) -> Any:
            rendering.set()
            held.append(delivered.wait(timeout=10))
            return iter(range(3))

    async def hook(request: Request) -> Response:
        return Response(status_code=204)

    envelope = {
        "id": str(uuid.uuid4()),
        "type": "ping.thing.happened",
        "subject": str(uuid.uuid4()),
        "data": {"title": "x", "numbers": Numbers()},
        "actor": {"kind": "system"},
    }

    async def render() -> None:
        async with n.context.session_factory() as session:
            await engine.apply(session, n.context, envelope, uuid.uuid4())
            await session.commit()

    async def deliver(url: str) -> None:
        for _ in range(10_000):  # bounded: until the render has begun
            if rendering.is_set():
                break
            await asyncio.sleep(0.001)
        channel = WebhookChannel()
        message = message_for(channel, url, extra={"secrets": ["whsec_" + "A" * 32]})
        sent = await channel.send(message, n.context)
        assert sent.ok, sent
        delivered.set()

    async with local_server([Route("/hook", hook, methods=["POST"])]) as base:
        await asyncio.gather(render(), deliver(f"{base}/hook"))
    assert held and held[0], "the delivery waited for the render to end"
    (note,) = await n.rows(Notification)
    assert note.body.startswith("[template error: TemplateTooCostly]") or note.body == "3"


@pytest.mark.parametrize("typed", ["NaN", "nan", "-NaN", "sNaN"])
def test_a_nan_typed_into_event_data_fails_an_ordered_condition_not_the_event(typed: str) -> None:
    """Decimal parses "NaN", and ordering it raises: one such value in an event's data
    must make ``gt`` false, not fail every rule of the event."""
    from crm2_notifications import conditions

    rule = [{"field": "data.value", "op": "gt", "value": 1000}]
    assert conditions.matches(rule, {"data": {"value": typed}}) is False
    assert conditions.matches([{**rule[0], "value": typed}], {"data": {"value": 5}}) is False
    assert conditions.matches(rule, {"data": {"value": "1001"}}) is True


async def test_a_rule_condition_value_nested_deep_is_no_500(
    notifications: Notifications,
) -> None:
    """A condition's ``value`` is ``Any``: one some 600 levels deep (JSON reads about a
    thousand) was a RecursionError in the body's walk for date-times (a 500); one 300
    deep was stored, then its echo was a 500 (pydantic serialises 255 levels)."""
    admin = (await notifications.users("admin"))[0]
    for depth in (100, 300, 600, 990):
        value = "[" * depth + "1" + "]" * depth
        body = (
            '{"name": "deep", "event_type": "ping.thing.happened",'
            ' "template": {"title": "x"}, "recipients": {"record": {"kind": "ping.thing"}},'
            f' "conditions": [{{"field": "data.value", "op": "eq", "value": {value}}}]}}'
        )
        response = await notifications.client.post(
            f"{API}/rules",
            content=body,
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == (201 if depth == 100 else 400), response.text[:300]
        if depth > 100:
            assert response.json()["type"].endswith("json-too-deep"), response.text[:300]


def test_lipsum_is_not_there_to_burn_the_cpu_in_one_call() -> None:
    """``lipsum(n)`` made n paragraphs in a single call, which no step budget sees: a
    ``lipsum(99999)`` title was half a minute of CPU at every event."""
    import time

    from crm2_notifications import templates

    started = time.perf_counter()
    text = templates.render("{{ lipsum(99999)|length }}", {})
    assert time.perf_counter() - started < 1
    assert text.startswith("[template error: "), text[:80]


async def test_a_template_raising_on_the_events_data_fails_only_its_own_text(
    notifications: Notifications,
) -> None:
    """A filter given data it cannot take raises whatever it likes (``dictsort`` of a
    text: AttributeError), which failed the whole event's handler, every rule's
    notification with it. Now that text shows as a template error, the rest as usual."""
    admin, owner = await notifications.users("admin", "agent")
    await notifications.rule(
        admin,
        template={"title": "{{ data.title }}", "body": "{{ data.title|dictsort }}"},
        recipients={"data_fields": ["owner_id"]},
    )
    await notifications.rule(
        admin,
        template={"title": "{{ data.title }} again", "body": "{{ data.title }}!"},
        recipients={"data_fields": ["owner_id"]},
    )
    await notifications.ping(admin, title="Still here", owner_id=owner.id)
    await notifications.settle()
    items = sorted(await notifications.feed(owner), key=lambda item: item["title"])
    assert [item["title"] for item in items] == ["Still here", "Still here again"]
    assert [item["body"] for item in items] == [
        "[template error: AttributeError]",
        "Still here!",
    ]
