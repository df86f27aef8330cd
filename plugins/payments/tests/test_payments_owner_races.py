"""A payment linked to a record while that record changes hands.

Creating a payment reads the linked record's owner, then commits. A hand-over of the
record that commits in between, with its event handled before the payment commits,
found no linked payment to move: the payment kept the previous owner for good. Creating
and the owner handlers now take turns per record (PostgreSQL; SQLite runs one writer at
a time, so the two cannot interleave there).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from crm2_payments.schemas.payments import PaymentCreate
from crm2_payments.service.payments import create_payment
from payments_kit import Payments, User

from crm2_core.api import EntityLink
from crm2_hookspecs import Principal

DEALS = "/api/v1/deals"


async def _client(p: Payments, owner: User) -> str:
    made = await p.client.post(
        f"{DEALS}/clients", json={"kind": "person", "name": "Per Lund"}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _policy(p: Payments, owner: User, client_id: str) -> str:
    body = {
        "number": f"P-{uuid.uuid4().hex[:6]}", "insurer": "Allianz", "product": "Motor",
        "client_id": client_id,
        "premium": "12.00", "currency": "EUR", "payment_frequency": "annual",
        "start_date": "2026-01-01", "end_date": "2026-12-31",
    }  # fmt: skip
    made = await p.client.post(f"{DEALS}/policies", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _race(
    p: Payments, first: User, second: User, manager: User, link: EntityLink, client_id: str,
    handler: str, event_type: str,
) -> str:  # fmt: skip
    await p.app.settle_events()
    await p.app.relay_by_hand()  # from here the test delivers by hand, as a worker would
    context = p.app.context
    principal = Principal(
        id=manager.id, kind="user", roles=frozenset({"manager"}), permissions=frozenset({"*"})
    )
    body = PaymentCreate.model_validate(
        {"amount": "10.00", "currency": "EUR", "link": link.model_dump(mode="json")}
    )
    async with context.session_factory() as session:
        payment, created = await create_payment(session, context, principal, body)
        assert created and payment.owner_id == first.id  # read before the hand-over below
        payment_id = str(payment.id)
        url = f"{DEALS}/clients/{client_id}"
        now = await p.client.get(url, headers=manager.headers)
        moved = await p.client.patch(
            url,
            json={"owner_id": str(second.id)},
            headers={**manager.headers, "If-Match": now.headers["ETag"]},
        )
        assert moved.status_code == 200, moved.text
        [event] = [e for e in await p.app.relay_by_hand() if e.type == event_type]
        handled = asyncio.create_task(p.app.deliver(handler, event))
        # the handler runs now; with the record's turn held by the payment it waits for it
        await asyncio.wait({handled}, timeout=1.0)
        await session.commit()
    assert await asyncio.wait_for(handled, 10) == "applied"
    return payment_id


async def test_a_payment_linked_during_a_clients_hand_over_follows_it(with_deals: Payments) -> None:
    if with_deals.app.context.settings.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: the two cannot interleave")
    first, second, manager = [await with_deals.user(r) for r in ("agent", "agent", "manager")]
    client_id = await _client(with_deals, first)
    link = EntityLink(kind="deals.client", id=uuid.UUID(client_id))
    payment_id = await _race(
        with_deals, first, second, manager, link, client_id,
        "payments.follow_owner", "deals.client.updated",
    )  # fmt: skip
    theirs = await with_deals.get(second, payment_id)
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(second.id)
    assert (await with_deals.get(first, payment_id)).status_code == 404


async def test_a_payment_linked_during_a_policys_hand_over_follows_it(with_deals: Payments) -> None:
    if with_deals.app.context.settings.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: the two cannot interleave")
    first, second, manager = [await with_deals.user(r) for r in ("agent", "agent", "manager")]
    client_id = await _client(with_deals, first)
    policy_id = await _policy(with_deals, first, client_id)
    link = EntityLink(kind="deals.policy", id=uuid.UUID(policy_id))
    # the client's hand-over carries the previous owner's policy on it along
    payment_id = await _race(
        with_deals, first, second, manager, link, client_id,
        "payments.schedules", "deals.policy.updated",
    )  # fmt: skip
    theirs = await with_deals.get(second, payment_id)
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(second.id)
    assert (await with_deals.get(first, payment_id)).status_code == 404
