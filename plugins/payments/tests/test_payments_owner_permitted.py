"""A payment follows its record only to an owner who may own payments.

Creating a payment refuses an owner whose roles do not grant ``payments:write`` (422
``owner-not-permitted``), and so does a user's reassignment. A record's hand-over used to
move its payments to such an owner all the same: a task assigned to a viewer, or a policy
handed to a user of a custom role with deals' rights but none of payments', took its
payments along (an owner who cannot change them, or not even see them). They stay with
their owner now, and the worker logs why.

A policy's activation gave its instalments to the policy's owner without that rule (a
user of a custom role with deals' rights but none of payments' owned a schedule), and a
user's reassignment judged the heir by roles alone, not by a ``crm2_check_permission``
hook as creating a payment does: with_deals apply the owner rule with hooks now.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from crm2_payments.service.schedules import on_policy_event
from payments_kit import API, DEALS, TASKS, Payments, User

from crm2_core.api import Envelope
from crm2_core.testing import PermissionVotes


async def test_a_task_assigned_to_a_viewer_keeps_its_payments_where_they_are(
    with_tasks: Payments, caplog: pytest.LogCaptureFixture
) -> None:
    p = with_tasks
    manager, agent, viewer = [await p.user(r) for r in ("manager", "agent", "viewer")]
    made_task = await p.client.post(
        f"{TASKS}/tasks",
        json={"title": "Collect the premium", "assignee_id": str(agent.id)},
        headers=manager.headers,
    )
    assert made_task.status_code == 201, made_task.text
    task_id = made_task.json()["id"]
    made = await p.create(manager, link={"kind": "tasks.task", "id": task_id})
    assert made["owner_id"] == str(agent.id)
    await p.app.settle_events()
    assigned = await p.client.post(
        f"{TASKS}/tasks/{task_id}/assign",
        json={"assignee_id": str(viewer.id)},
        headers=manager.headers,
    )
    assert assigned.status_code == 200, assigned.text
    with caplog.at_level(logging.WARNING, logger="crm2_payments"):
        await p.app.settle_events()
    kept = await p.get(agent, made["id"])
    assert kept.status_code == 200 and kept.json()["owner_id"] == str(agent.id)
    assert await p.events("payments.payment.updated") == []
    assert any("payments:write" in r.getMessage() for r in caplog.records)


DEALS_ONLY = ["deals:read", "deals:write", "deals:all_records"]


async def _role_without_payments(p: Payments, admin: User) -> User:
    return await p.role_user(admin, "underwriter", DEALS_ONLY)


async def test_a_policy_handed_to_a_user_who_may_not_own_payments_keeps_its_payments(
    with_deals: Payments,
) -> None:
    p = with_deals
    admin, agent = await p.user("admin"), await p.user("agent")
    underwriter = await _role_without_payments(p, admin)
    policy_id = await _activated_policy(p, agent, "P-1")
    await p.app.settle_events()
    linked = await p.create(agent, amount="5.00", link={"kind": "deals.policy", "id": policy_id})
    await p.hand_over(admin, f"{DEALS}/policies/{policy_id}", underwriter)
    await p.app.settle_events()
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id}, headers=agent.headers
    )
    owners = {i["owner_id"] for i in listed.json()["items"]}
    assert len(listed.json()["items"]) == 5 and owners == {str(agent.id)}
    assert (await p.get(agent, linked["id"])).json()["owner_id"] == str(agent.id)
    schedule = await p.client.get(f"{API}/schedules", headers=agent.headers)
    assert [s["owner_id"] for s in schedule.json()["items"]] == [str(agent.id)]
    assert await p.events("payments.payment.updated") == []


def _suspends() -> PermissionVotes:
    """A third-party rule: suspended users may not write payments (``crm2_check_permission``)."""
    return PermissionVotes("payments:write", depends=("payments",))


async def _activated_policy(p: Payments, owner: User, number: str = "P-9") -> str:
    client = await p.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna"}, headers=owner.headers
    )
    assert client.status_code == 201, client.text
    body = {
        "number": number, "insurer": "Allianz", "client_id": client.json()["id"],
        "product": "Motor", "premium": "120.00", "currency": "EUR",
        "payment_frequency": "quarterly", "start_date": "2026-01-15",
        "end_date": "2027-01-14",
    }  # fmt: skip
    policy = await p.client.post(f"{DEALS}/policies", json=body, headers=owner.headers)
    assert policy.status_code == 201, policy.text
    policy_id: str = policy.json()["id"]
    await p.activate(owner, policy_id)
    return policy_id


async def _no_schedule_for(p: Payments, policy_id: str, admin: User) -> None:
    schedules = await p.client.get(
        f"{API}/schedules", params={"policy_id": policy_id}, headers=admin.headers
    )
    assert schedules.status_code == 200 and schedules.json()["items"] == [], schedules.text
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id}, headers=admin.headers
    )
    assert listed.json()["items"] == []
    assert await p.events("payments.schedule.created") == []


async def test_a_policy_activated_by_a_user_who_may_not_own_payments_makes_no_schedule(
    with_deals: Payments, caplog: pytest.LogCaptureFixture
) -> None:
    """The instalments would belong to an owner who cannot change them (payments:write, as
    creating a payment requires): none is made, and the worker logs why."""
    p = with_deals
    admin = await p.user("admin")
    underwriter = await _role_without_payments(p, admin)
    policy_id = await _activated_policy(p, underwriter)
    with caplog.at_level(logging.WARNING, logger="crm2_payments"):
        await p.app.settle_events()
    await _no_schedule_for(p, policy_id, admin)
    assert any(
        "payments:write" in r.getMessage() and policy_id in r.getMessage() for r in caplog.records
    )


async def test_a_policy_of_an_agent_a_hook_denies_writing_payments_makes_no_schedule(
    crm2_app_factory: Any,
) -> None:
    rule = _suspends()
    p = Payments(
        await crm2_app_factory(plugins=["deals", "payments", rule.name], extra_plugins=(rule,))
    )
    admin, agent = await p.user("admin"), await p.user("agent")
    rule.deny(agent.id)
    policy_id = await _activated_policy(p, agent)
    await p.app.settle_events()
    await _no_schedule_for(p, policy_id, admin)


async def test_reassign_to_a_user_a_hook_denies_writing_payments_is_422(
    crm2_app_factory: Any,
) -> None:
    """The owner rule with hooks, as creating a payment applies it: a user's roles grant
    payments:write but a plugin's rule denies it to them."""
    rule = _suspends()
    p = Payments(await crm2_app_factory(plugins=["payments", rule.name], extra_plugins=(rule,)))
    admin, leaving, heir = [await p.user(r) for r in ("admin", "agent", "agent")]
    made = await p.create(leaving)
    rule.deny(heir.id)
    response = await p.client.post(
        f"/api/v1/auth/users/{leaving.id}/reassign", json={"to": str(heir.id)},
        headers=admin.headers,
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:owner-not-permitted"
    still = await p.get(leaving, made["id"])
    assert still.status_code == 200 and still.json()["version"] == made["version"]


async def _hand_policy(p: Payments, admin: User, policy_id: str, to: User) -> None:
    """The policy's client first (a policy's owner must see its client), then the policy."""
    url = f"{DEALS}/policies/{policy_id}"
    policy = await p.client.get(url, headers=admin.headers)
    await p.hand_over(admin, f"{DEALS}/clients/{policy.json()['client_id']}", to)
    await p.hand_over(admin, url, to)
    await p.app.settle_events()


async def test_a_refused_schedule_is_built_when_the_policy_passes_to_an_owner_who_may(
    with_deals: Payments,
) -> None:
    """The activation refused for its owner is held: the first hand-over to an owner who
    may own payments builds the schedule for them, once (a redelivered hand-over, or the
    next one, builds no second schedule)."""
    p = with_deals
    admin, agent, heir = await p.user("admin"), await p.user("agent"), await p.user("agent")
    underwriter = await _role_without_payments(p, admin)
    policy_id = await _activated_policy(p, underwriter)
    await p.app.settle_events()
    await _no_schedule_for(p, policy_id, admin)
    await _hand_policy(p, admin, policy_id, agent)
    schedules = await p.client.get(
        f"{API}/schedules", params={"policy_id": policy_id}, headers=agent.headers
    )
    (schedule,) = schedules.json()["items"]
    assert (schedule["owner_id"], schedule["instalments"]) == (str(agent.id), 4)
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id}, headers=agent.headers
    )
    items = listed.json()["items"]
    assert sorted(i["amount"] for i in items) == ["30.00"] * 4
    assert {i["owner_id"] for i in items} == {str(agent.id)}
    assert len(await p.events("payments.schedule.created")) == 1

    redelivered = (await p.events("deals.policy.updated"))[-1]
    async with p.app.context.session_factory() as session:
        event = Envelope(
            id=uuid.uuid4(), type=redelivered.type, version=1,
            occurred_at="2026-01-01T00:00:00Z", actor={"kind": "system"},
            subject=policy_id, data=dict(redelivered.data),
        )  # fmt: skip
        await on_policy_event(session, event, p.app.context)
        await on_policy_event(session, event, p.app.context)
        await session.commit()
    await _hand_policy(p, admin, policy_id, heir)
    again = await p.client.get(f"{API}/schedules", params={"policy_id": policy_id},
                               headers=admin.headers)  # fmt: skip
    assert [s["owner_id"] for s in again.json()["items"]] == [str(heir.id)]
    every = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id}, headers=admin.headers
    )
    assert len(every.json()["items"]) == 4
    assert {i["owner_id"] for i in every.json()["items"]} == {str(heir.id)}
    assert len(await p.events("payments.schedule.created")) == 1


async def test_a_refused_schedule_is_not_built_for_a_cancelled_policy_or_a_refused_heir(
    with_deals: Payments,
) -> None:
    p = with_deals
    admin, agent = await p.user("admin"), await p.user("agent")
    underwriter = await _role_without_payments(p, admin)
    other_underwriter = await p.user("underwriter")
    policy_id = await _activated_policy(p, underwriter)
    await p.app.settle_events()
    await _hand_policy(p, admin, policy_id, other_underwriter)  # may not own payments either
    await _no_schedule_for(p, policy_id, admin)
    url = f"{DEALS}/policies/{policy_id}"
    etag = (await p.client.get(url, headers=admin.headers)).headers["ETag"]
    cancelled = await p.client.post(f"{url}/cancel", headers={**admin.headers, "If-Match": etag})
    assert cancelled.status_code == 200, cancelled.text
    await p.app.settle_events()
    await _hand_policy(p, admin, policy_id, agent)
    await _no_schedule_for(p, policy_id, admin)


async def _grant_payments(p: Payments, admin: User, role: str) -> None:
    granted = [*DEALS_ONLY, "payments:read", "payments:write"]
    await p.patch(admin, f"/api/v1/auth/roles/{role}", {"permissions": granted})


async def test_an_admin_builds_held_schedules_once_the_owners_role_may_own_payments(
    with_deals: Payments,
) -> None:
    """A held activation was built only by a hand-over: when the owner's role gained
    payments:write instead, the policy stayed without a schedule for good. An admin's
    POST /schedules/held/build builds it for that owner, once; a policy whose owner still
    may not stays held."""
    p = with_deals
    admin, agent = await p.user("admin"), await p.user("agent")
    underwriter = await _role_without_payments(p, admin)
    policy_id = await _activated_policy(p, underwriter)
    clerk = await p.role_user(admin, "clerk", DEALS_ONLY)
    other_policy = await _activated_policy(p, clerk, "P-10")
    await p.app.settle_events()
    await _no_schedule_for(p, policy_id, admin)
    url = f"{API}/schedules/held/build"
    assert (await p.client.post(url, headers=agent.headers)).status_code == 403
    nothing = await p.client.post(url, headers=admin.headers)
    assert nothing.status_code == 200, nothing.text
    assert nothing.json() == {
        "built": [],
        "held": sorted([policy_id, other_policy]),
        "remaining": 0,
        "next_after": None,
    }

    await _grant_payments(p, admin, "underwriter")
    built = await p.client.post(url, headers=admin.headers)
    assert built.status_code == 200, built.text
    (schedule,) = built.json()["built"]
    assert built.json()["held"] == [other_policy]
    assert (schedule["policy_id"], schedule["owner_id"]) == (policy_id, str(underwriter.id))
    assert schedule["instalments"] == 4
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id}, headers=underwriter.headers
    )
    assert sorted(i["amount"] for i in listed.json()["items"]) == ["30.00"] * 4
    assert {i["owner_id"] for i in listed.json()["items"]} == {str(underwriter.id)}
    again = await p.client.post(url, headers=admin.headers)
    assert again.json() == {"built": [], "held": [other_policy], "remaining": 0, "next_after": None}
    assert len(await p.events("payments.schedule.created")) == 1


async def test_held_schedules_are_built_in_batches_an_admin_walks_through(
    with_deals: Payments,
) -> None:
    """One request built every held activation at once (thousands of policies: one
    transaction holding a lock per policy for minutes). A batch takes ``limit`` policies
    after ``after``; ``remaining`` and ``next_after`` lead to the next; one still held is
    passed, not examined again, so the walk ends."""
    p = with_deals
    admin = await p.user("admin")
    underwriter = await _role_without_payments(p, admin)
    mine = [await _activated_policy(p, underwriter, f"P-{i}") for i in range(2)]
    still = await _activated_policy(p, await p.role_user(admin, "clerk", DEALS_ONLY), "P-10")
    await p.app.settle_events()
    await _grant_payments(p, admin, "underwriter")
    url = f"{API}/schedules/held/build"
    assert (await p.client.post(url, params={"limit": 0}, headers=admin.headers)).status_code == 422
    built: list[str] = []
    held: list[str] = []
    after: str | None = None
    for left in (2, 1, 0):
        params: dict[str, Any] = {"limit": 1, **({"after": after} if after else {})}
        batch = await p.client.post(url, params=params, headers=admin.headers)
        assert batch.status_code == 200, batch.text
        built += [s["policy_id"] for s in batch.json()["built"]]
        held += batch.json()["held"]
        assert batch.json()["remaining"] == left
        after = batch.json()["next_after"]
        assert (after is None) == (left == 0)
    assert sorted(built) == sorted(mine) and held == [still]
    assert len(await p.events("payments.schedule.created")) == 2
