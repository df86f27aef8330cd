"""Payments next to deals: schedules from policy events, commissions, links, cancellation.

Payments imports nothing of deals: the policy events arrive through the bus by
type name and links are checked with ``crm2_resolve_entity``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm2_payments.models import Schedule
from crm2_payments.service.schedules import on_policy_event
from payments_kit import API, DEALS, Payments, User, key
from sqlalchemy import func, select

from crm2_core.api import Envelope


def _the_15th(months_from_now: int) -> date:
    today = datetime.now(UTC).date()
    year, month = divmod(today.year * 12 + today.month - 1 + months_from_now, 12)
    return date(year, month + 1, 15)


# a year-long policy that started six months ago: some instalments are already due,
# the rest lie ahead, whatever day the suite runs
START = _the_15th(-6)
END = _the_15th(6) - timedelta(days=1)


async def a_policy(p: Payments, owner: User, **fields: Any) -> dict[str, Any]:
    client = await p.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Anna Berg"}, headers=owner.headers
    )
    assert client.status_code == 201, client.text
    body = {
        "number": f"P-{uuid.uuid4().hex[:6]}", "insurer": "Allianz",
        "client_id": client.json()["id"],
        "product": "Motor", "premium": "1000.00", "currency": "EUR",
        "payment_frequency": "monthly",
        "start_date": START.isoformat(), "end_date": END.isoformat(),
        **fields,
    }  # fmt: skip
    made = await p.client.post(f"{DEALS}/policies", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


async def test_an_activated_policy_gets_its_schedule_once(with_deals: Payments) -> None:
    admin, agent, other = (
        await with_deals.user("admin"),
        await with_deals.user("agent"),
        await with_deals.user("agent"),
    )
    rule = {"insurer": "Allianz", "basis_points": 1250}
    await with_deals.commission_rule(admin, **rule)
    policy = await a_policy(with_deals, agent, premium="100.00")
    await with_deals.activate(agent, policy["id"])
    await with_deals.app.settle_events()
    listed = await with_deals.client.get(
        f"{API}/payments",
        params={"policy_id": policy["id"], "sort": "due_date"},
        headers=agent.headers,
    )
    instalments = listed.json()["items"]
    assert [p["amount"] for p in instalments] == ["8.37", *["8.33"] * 11]  # remainder first
    assert sum(Decimal(p["amount"]) for p in instalments) == Decimal("100.00")
    assert instalments[0]["due_date"] == START.isoformat()
    assert instalments[1]["due_date"] == _the_15th(-5).isoformat()
    assert {p["insurer"] for p in instalments} == {"Allianz"}
    assert {p["owner_id"] for p in instalments} == {str(agent.id)}
    hidden = await with_deals.client.get(f"{API}/payments", params={"policy_id": policy["id"]},
                                   headers=other.headers)  # fmt: skip
    assert hidden.json()["items"] == []
    schedule_url = f"{API}/schedules/{instalments[0]['schedule_id']}"
    assert (await with_deals.client.get(schedule_url, headers=agent.headers)).status_code == 200
    assert (await with_deals.client.get(schedule_url, headers=other.headers)).status_code == 404

    # a redelivered activation (same event, or deals announcing it again) creates nothing
    async with with_deals.app.context.session_factory() as session:
        event = Envelope(
            id=uuid.uuid4(), type="deals.policy.activated", version=1,
            occurred_at=f"{START}T00:00:00Z", actor={"kind": "system"}, subject=policy["id"],
            data={"client_id": policy["client_id"], "premium": "100.00", "currency": "EUR",
                  "payment_frequency": "monthly", "start_date": START.isoformat(),
                  "end_date": END.isoformat(), "owner_id": str(agent.id)},
        )  # fmt: skip
        await on_policy_event(session, event, with_deals.app.context)
        await on_policy_event(session, event, with_deals.app.context)
        await session.commit()
        count = select(func.count()).select_from(Schedule)
        assert (await session.execute(count)).scalar_one() == 1
    again = await with_deals.client.get(f"{API}/payments", params={"policy_id": policy["id"]},
                                  headers=agent.headers)  # fmt: skip
    assert len(again.json()["items"]) == 12
    assert len(await with_deals.events("payments.schedule.created")) == 1

    # paying an instalment earns 12.5 % commission; a refund reverses it
    first = instalments[0]
    paid = await with_deals.move(agent, first["id"], "payment", "8.37")
    assert paid.status_code == 201, paid.text
    await with_deals.move(agent, first["id"], "refund", "4.00")
    ledger = await with_deals.client.get(f"{API}/commissions", params={"payment_id": first["id"]},
                                   headers=agent.headers)  # fmt: skip
    amounts = sorted(Decimal(c["amount"]) for c in ledger.json()["items"])
    assert amounts == [Decimal("-0.50"), Decimal("1.05")]  # 1.046 → 1.05; 4.37 → 0.55
    assert (await with_deals.client.get(f"{API}/commissions", headers=other.headers)).json()[
        "items"
    ] == []

    # cancelling the policy cancels the future instalments without money on them
    cancelled = await with_deals.client.post(
        f"{DEALS}/policies/{policy['id']}/cancel", headers=agent.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    await with_deals.app.settle_events()
    after = await with_deals.client.get(f"{API}/payments", params={"policy_id": policy["id"]},
                                  headers=agent.headers)  # fmt: skip
    statuses = {p["instalment"]: p["status"] for p in after.json()["items"]}
    assert statuses[1] == "partially_refunded"
    # instalments already due stay owed (the due/overdue jobs may or may not have run);
    # those due after today are cancelled
    today = datetime.now(UTC).date().isoformat()
    for p in after.json()["items"]:
        if p["instalment"] == 1:
            continue
        if p["due_date"] > today:
            assert p["status"] == "cancelled", p
        else:
            assert p["status"] in {"planned", "due", "overdue"}, p
    assert "cancelled" in statuses.values()
    balance = await with_deals.client.get(f"{API}/balances", params={"policy_id": policy["id"]},
                                    headers=agent.headers)  # fmt: skip
    assert balance.json()["balances"][0]["paid"] == "4.37"


async def test_a_payment_linked_to_a_client_belongs_to_the_clients_owner(
    with_deals: Payments,
) -> None:
    manager, agent, stranger = [await with_deals.user(r) for r in ("manager", "agent", "agent")]
    client = await with_deals.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Ola"}, headers=agent.headers
    )
    link = {"kind": "deals.client", "id": client.json()["id"]}
    body = {"amount": "20.00", "currency": "EUR", "link": link}
    made = await with_deals.client.post(
        f"{API}/payments", json=body, headers={**manager.headers, **key()}
    )
    assert made.status_code == 201, made.text
    assert made.json()["owner_id"] == str(agent.id) and made.json()["client_id"] == link["id"]
    peek = await with_deals.client.post(
        f"{API}/payments", json=body, headers={**stranger.headers, **key()}
    )
    assert peek.status_code == 422  # the same answer as for a client that does not exist
    mine = await with_deals.get(agent, made.json()["id"])
    assert mine.status_code == 200


async def test_a_payment_is_put_only_on_a_policy_or_client_the_caller_can_see(
    with_deals: Payments,
) -> None:
    """policy_id / client_id put a payment in that record's totals (GET /balances): a
    stranger cannot add to another agent's, while an id no plugin knows stays free text."""
    agent, stranger = await with_deals.user("agent"), await with_deals.user("agent")
    policy = await a_policy(with_deals, agent)
    client_id = policy["client_id"]
    for field, value in (("policy_id", policy["id"]), ("client_id", client_id)):
        body = {"amount": "999.00", "currency": "EUR", field: value}
        refused = await with_deals.client.post(
            f"{API}/payments", json=body, headers={**stranger.headers, **key()}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("link-invalid")
        taken = await with_deals.client.post(
            f"{API}/payments", json=body, headers={**agent.headers, **key()}
        )
        assert taken.status_code == 201, taken.text
    own_numbering = {"amount": "5.00", "currency": "EUR", "policy_id": "POL-2026-0001"}
    free = await with_deals.client.post(
        f"{API}/payments", json=own_numbering, headers={**stranger.headers, **key()}
    )
    assert free.status_code == 201, free.text


async def test_a_product_rule_earns_the_commission_on_scheduled_instalments(
    with_deals: Payments,
) -> None:
    admin, agent = await with_deals.user("admin"), await with_deals.user("agent")
    for rule in (
        {"insurer": "Allianz", "basis_points": 1000},
        {"insurer": "Allianz", "product": "Motor", "basis_points": 2000},
    ):
        await with_deals.commission_rule(admin, **rule)
    policy = await a_policy(with_deals, agent, premium="120.00")
    await with_deals.activate(agent, policy["id"])
    await with_deals.app.settle_events()
    listed = await with_deals.client.get(
        f"{API}/payments", params={"policy_id": policy["id"], "sort": "due_date"},
        headers=agent.headers,
    )  # fmt: skip
    first = listed.json()["items"][0]
    assert first["product"] == "Motor" and first["insurer"] == "Allianz"
    paid = await with_deals.move(agent, first["id"], "payment", "10.00")
    assert paid.status_code == 201, paid.text
    ledger = await with_deals.client.get(f"{API}/commissions", params={"payment_id": first["id"]},
                                   headers=agent.headers)  # fmt: skip
    assert [c["amount"] for c in ledger.json()["items"]] == ["2.00"]  # 20 %, not the 10 % rule


async def test_a_policy_whose_instalments_pass_the_calendars_end_gets_no_schedule(
    with_deals: Payments,
) -> None:
    """deals takes a policy from 9999-06-01 to 9999-12-31; monthly instalments would be due
    in year 10000: the handler raised ValueError on every delivery (a poison message)."""
    agent = await with_deals.user("agent")
    async with with_deals.app.context.session_factory() as session:
        event = Envelope(
            id=uuid.uuid4(), type="deals.policy.activated", version=1,
            occurred_at="2026-01-01T00:00:00Z", actor={"kind": "system"}, subject="p-9999",
            data={"premium": "120.00", "currency": "EUR", "payment_frequency": "monthly",
                  "start_date": "9999-06-01", "end_date": "9999-12-31",
                  "owner_id": str(agent.id)},
        )  # fmt: skip
        await on_policy_event(session, event, with_deals.app.context)
        await session.commit()
        count = select(func.count()).select_from(Schedule)
        assert (await session.execute(count)).scalar_one() == 0


async def test_a_premium_beyond_the_payment_limit_is_no_poison_message(
    with_deals: Payments,
) -> None:
    """deals takes a premium up to 15 integer digits; past payments' 10^15 minor units the
    handler raised InvalidAmount (not a ValueError) on every delivery. Through the API:
    the activation settles, and no schedule is built."""
    agent = await with_deals.user("agent")
    policy = await a_policy(with_deals, agent, premium="99999999999999.99")
    await with_deals.activate(agent, policy["id"])
    await with_deals.app.settle_events()
    async with with_deals.app.context.session_factory() as session:
        count = select(func.count()).select_from(Schedule)
        assert (await session.execute(count)).scalar_one() == 0


# A policy handed to another agent takes its payments along (``deals.policy.updated``).
# The README: "a payment's owner is the owner of its record (the policy's agent for
# instalments, the linked record's owner for one entered with a `link`)"; before payments
# consumed the event, the instalments stayed with the previous agent: the new one saw none
# of the policy's payments, the previous one kept seeing them all.


async def _hand_over(p: Payments, admin: User, policy_id: str, to: User) -> None:
    """The policy, and its client first (deals wants the new owner to see the client)."""
    policy = await p.client.get(f"{DEALS}/policies/{policy_id}", headers=admin.headers)
    for url in (f"{DEALS}/clients/{policy.json()['client_id']}", f"{DEALS}/policies/{policy_id}"):
        await p.hand_over(admin, url, to)


async def _policy_payments(p: Payments, user: User, policy_id: str) -> list[dict[str, Any]]:
    listed = await p.client.get(
        f"{API}/payments", params={"policy_id": policy_id, "limit": 100}, headers=user.headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_handed_over_policy_takes_its_instalments_and_linked_payments(
    with_deals: Payments,
) -> None:
    admin, before, after = [await with_deals.user(r) for r in ("admin", "agent", "agent")]
    rule = {"insurer": "Allianz", "basis_points": 1000}
    await with_deals.commission_rule(admin, **rule)
    policy = await a_policy(with_deals, before, premium="120.00")
    await with_deals.activate(before, policy["id"])
    await with_deals.app.settle_events()
    link = {"kind": "deals.policy", "id": policy["id"]}
    linked = await with_deals.create(before, amount="5.00", link=link)
    instalments = await _policy_payments(with_deals, before, policy["id"])
    assert len(instalments) == 13
    first = next(i for i in instalments if i["instalment"] == 1)
    assert (await with_deals.move(before, first["id"], "payment", "10.00")).status_code == 201

    await _hand_over(with_deals, admin, policy["id"], after)
    await with_deals.app.settle_events()

    theirs = await _policy_payments(with_deals, after, policy["id"])
    assert {i["id"] for i in theirs} == {i["id"] for i in instalments}
    assert {i["owner_id"] for i in theirs} == {str(after.id)}
    assert await _policy_payments(with_deals, before, policy["id"]) == []
    assert (await with_deals.get(before, linked["id"])).status_code == 404
    schedule_url = f"{API}/schedules/{first['schedule_id']}"
    assert (await with_deals.client.get(schedule_url, headers=after.headers)).status_code == 200
    assert (await with_deals.client.get(schedule_url, headers=before.headers)).status_code == 404
    commissions = await with_deals.client.get(
        f"{API}/commissions", params={"payment_id": first["id"]}, headers=after.headers
    )
    assert [c["amount"] for c in commissions.json()["items"]] == ["1.00"]
    balance = await with_deals.client.get(
        f"{API}/balances", params={"policy_id": policy["id"]}, headers=after.headers
    )
    assert balance.json()["balances"][0]["paid"] == "10.00"
    # the stream tells the new owner, and the previous one that they lost the payment
    updated = [
        e
        for e in await with_deals.events("payments.payment.updated")
        if "owner_id" in e.data["changed"]
    ]
    assert len(updated) == 13
    assert {e.data["owner_id"] for e in updated} == {str(after.id)}
    assert {e.data["previous_owner_id"] for e in updated} == {str(before.id)}


async def test_a_redelivered_or_late_hand_over_changes_nothing(
    with_deals: Payments,
) -> None:
    """The same event twice moves nothing the second time; an older hand-over delivered after
    a newer one leaves the payments with the policy's owner of now."""
    admin, first, second, third = (
        await with_deals.user("admin"), await with_deals.user("agent"),
        await with_deals.user("agent"), await with_deals.user("agent"))  # fmt: skip
    policy = await a_policy(with_deals, first, premium="12.00", payment_frequency="annual")
    await with_deals.client.post(f"{DEALS}/policies/{policy['id']}/activate", headers=first.headers)
    await with_deals.app.settle_events()
    await _hand_over(with_deals, admin, policy["id"], second)
    await _hand_over(with_deals, admin, policy["id"], third)
    await with_deals.app.settle_events()
    assert len(await _policy_payments(with_deals, third, policy["id"])) == 1
    moves = len(await with_deals.events("payments.payment.updated"))

    def handover(frm: User, to: User) -> Envelope:
        return Envelope(
            id=uuid.uuid4(), type="deals.policy.updated", version=1,
            occurred_at="2026-01-01T00:00:00Z", actor={"kind": "system"}, subject=policy["id"],
            data={"changed": ["owner_id"], "owner_id": str(to.id),
                  "previous_owner_id": str(frm.id)},
        )  # fmt: skip

    async with with_deals.app.context.session_factory() as session:
        late = handover(first, second)
        await on_policy_event(session, late, with_deals.app.context)
        await on_policy_event(session, late, with_deals.app.context)
        await on_policy_event(session, handover(second, third), with_deals.app.context)
        await session.commit()
    assert len(await _policy_payments(with_deals, third, policy["id"])) == 1
    assert await _policy_payments(with_deals, second, policy["id"]) == []
    assert len(await with_deals.events("payments.payment.updated")) == moves


async def test_a_policy_change_other_than_its_owner_moves_nothing(
    with_deals: Payments,
) -> None:
    admin, agent = await with_deals.user("admin"), await with_deals.user("agent")
    policy = await a_policy(with_deals, agent, premium="12.00", payment_frequency="annual")
    await with_deals.client.post(f"{DEALS}/policies/{policy['id']}/activate", headers=agent.headers)
    await with_deals.app.settle_events()
    await with_deals.patch(admin, f"{DEALS}/policies/{policy['id']}", {"product": "Home"})
    await with_deals.app.settle_events()
    assert len(await _policy_payments(with_deals, agent, policy["id"])) == 1
    assert await with_deals.events("payments.payment.updated") == []


async def test_an_activation_handled_after_a_hand_over_gives_the_owner_of_now(
    with_deals: Payments,
) -> None:
    """An activation retried after the policy's hand-over was handled (the update found no
    schedule yet): the instalments went to the owner the activation named, for good."""
    admin, first, second = [await with_deals.user(r) for r in ("admin", "agent", "agent")]
    policy = await a_policy(with_deals, first, premium="12.00", payment_frequency="annual")
    await _hand_over(with_deals, admin, policy["id"], second)
    await with_deals.app.settle_events()
    async with with_deals.app.context.session_factory() as session:
        late = Envelope(
            id=uuid.uuid4(), type="deals.policy.activated", version=1,
            occurred_at=f"{START}T00:00:00Z", actor={"kind": "system"}, subject=policy["id"],
            data={"client_id": policy["client_id"], "premium": "12.00", "currency": "EUR",
                  "payment_frequency": "annual", "start_date": START.isoformat(),
                  "end_date": END.isoformat(), "owner_id": str(first.id)},
        )  # fmt: skip
        await on_policy_event(session, late, with_deals.app.context)
        await session.commit()
    (instalment,) = await _policy_payments(with_deals, second, policy["id"])
    assert instalment["owner_id"] == str(second.id)
    assert await _policy_payments(with_deals, first, policy["id"]) == []
    schedule = await with_deals.client.get(
        f"{API}/schedules/{instalment['schedule_id']}", headers=second.headers
    )
    assert schedule.status_code == 200, schedule.text


async def test_a_payment_linked_to_a_client_follows_the_clients_hand_over(
    with_deals: Payments,
) -> None:
    """The linked record's owner owns the payment (README), after a hand-over too: the
    payment stayed with the client's previous owner."""
    admin, first, second = [await with_deals.user(r) for r in ("admin", "agent", "agent")]
    client = await with_deals.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Ola"}, headers=first.headers
    )
    link = {"kind": "deals.client", "id": client.json()["id"]}
    made = await with_deals.create(first, amount="20.00", link=link)
    await with_deals.hand_over(admin, f"{DEALS}/clients/{link['id']}", second)
    await with_deals.app.settle_events()
    theirs = await with_deals.get(second, made["id"])
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(second.id)
    assert (await with_deals.get(first, made["id"])).status_code == 404
