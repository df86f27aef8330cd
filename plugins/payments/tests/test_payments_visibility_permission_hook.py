"""Who sees every payment honours ``crm2_check_permission``, as deals' rule does.

``payments:all_records`` was read from the caller's roles alone on the list, the
export, balances, schedules, commissions, a new payment's owner and a statement's
automatic matching (``PAYMENTS.visibility(principal)`` without the session): a
plugin that denied it a manager still let them see, and book on, every owner's
payments. A hook's ``True`` (or ``None``) leaves it to the roles: it widens no one.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from crm2_payments.models import Schedule
from crm2_payments.visibility import RULES
from payments_kit import API, Payments, key
from test_payments_reconciliation import statement, upload

from crm2_core.testing import Crm2TestApp, PermissionVotes
from crm2_hookspecs import Principal

ALL_RECORDS = "payments:all_records"


async def _app(crm2_app_factory: Any) -> tuple[Payments, PermissionVotes]:
    rule = PermissionVotes(ALL_RECORDS, depends=("payments",))  # a branch rule
    app: Crm2TestApp = await crm2_app_factory(
        plugins=["payments", rule.name], extra_plugins=(rule,)
    )
    return Payments(app), rule


async def _schedule(p: Payments, owner_id: uuid.UUID) -> str:
    row = Schedule(
        policy_id=f"pol-{uuid.uuid4().hex[:8]}",
        premium_minor=12000,
        currency="EUR",
        frequency="monthly",
        instalments=12,
        start_date=date(2026, 1, 1),
        owner_id=owner_id,
    )
    async with p.app.context.session_factory() as session:
        session.add(row)
        await session.commit()
    return str(row.id)


async def _items(p: Payments, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await p.client.get(f"{API}{path}", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_manager_a_hook_denies_all_records_sees_only_their_own_payments(
    crm2_app_factory: Any,
) -> None:
    p, rule = await _app(crm2_app_factory)
    admin, manager, agent = await p.user("admin"), await p.user("manager"), await p.user("agent")
    made = await p.client.post(
        f"{API}/commission-rules",
        json={"insurer": "Allianz", "fixed_amount": "5.00", "currency": "EUR"},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    theirs = await p.create(agent, amount="30.00", client_id="c-1", insurer="Allianz")
    assert (await p.move(agent, theirs["id"], "payment", "30.00")).status_code == 201
    schedule = await _schedule(p, agent.id)
    rule.votes[manager.id] = False
    mine = await p.create(manager, amount="9.00")
    h = manager.headers

    assert [x["id"] for x in await _items(p, "/payments", h)] == [mine["id"]]
    assert (await p.get(manager, theirs["id"])).status_code == 404
    exported = await p.client.get(f"{API}/payments/export.csv", headers=h)
    assert exported.status_code == 200, exported.text
    assert mine["id"] in exported.text and theirs["id"] not in exported.text
    balances = await p.client.get(f"{API}/balances?client_id=c-1", headers=h)
    assert balances.json()["balances"] == [], balances.text
    assert await _items(p, "/schedules", h) == []
    got = await p.client.get(f"{API}/schedules/{schedule}", headers=h)
    assert got.status_code == 404, got.text
    assert await _items(p, "/commissions", h) == []
    given = await p.client.post(
        f"{API}/payments",
        json={"amount": "1.00", "currency": "EUR", "owner_id": str(agent.id)},
        headers={**h, **key()},
    )
    assert given.status_code == 403, given.text
    assert given.headers["content-type"].startswith("application/problem+json")

    rule.votes[manager.id] = True  # the hook decides per request; True leaves it to the roles
    assert {x["id"] for x in await _items(p, "/payments", h)} == {mine["id"], theirs["id"]}
    assert (await p.client.get(f"{API}/schedules/{schedule}", headers=h)).status_code == 200
    assert len(await _items(p, "/commissions", h)) == 1


async def test_an_upload_by_a_manager_a_hook_denies_all_records_matches_only_their_own(
    crm2_app_factory: Any,
) -> None:
    p, rule = await _app(crm2_app_factory)
    manager, agent = await p.user("manager"), await p.user("agent")
    theirs = await p.create(agent, amount="7.00", reference="AGENT-1")
    rule.votes[manager.id] = False
    result = await upload(p, manager.headers, statement("2026-01-01;7,00;EUR;AGENT-1;Y"))
    assert (result["matched"], result["unmatched"]) == (0, 1), result
    assert (await p.get(agent, theirs["id"])).json()["paid"] == "0.00"


async def test_a_hook_that_says_yes_gives_an_agent_no_one_elses_payments(
    crm2_app_factory: Any,
) -> None:
    p, rule = await _app(crm2_app_factory)
    agent, other = await p.user("agent"), await p.user("agent")
    rule.votes[agent.id] = True
    theirs = await p.create(other, client_id="c-2")
    assert await _items(p, "/payments", agent.headers) == []
    assert (await p.get(agent, theirs["id"])).status_code == 404


async def test_the_stream_follows_the_hook(crm2_app_factory: Any) -> None:
    p, rule = await _app(crm2_app_factory)
    manager, agent = await p.user("manager"), await p.user("agent")
    principal = Principal(
        id=manager.id,
        kind="user",
        roles=frozenset({"manager"}),
        permissions=frozenset({"payments:read", ALL_RECORDS}),
    )
    event = {"data": {"owner_id": str(agent.id)}}
    context = p.app.context
    assert await RULES.can_see(principal, event, context)
    rule.votes[manager.id] = False
    assert not await RULES.can_see(principal, event, context)
