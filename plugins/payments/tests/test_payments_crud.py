"""Payments over HTTP: create (Idempotency-Key, 201 + Location), get (ETag), PATCH (If-Match),
list (filters, cursor), cancel, bad input as precise 4xx, ingestion by external id."""

from __future__ import annotations

from datetime import timedelta

from payments_kit import API, Payments, key
from sqlalchemy import select

from crm2_core.api import utcnow
from crm2_core.testing import EventRecord
from crm2_core.testing.statements import sent_to_postgresql


async def test_create_get_update_list_cancel(payments: Payments) -> None:
    agent = await payments.user("agent")
    # due in the future whatever day this runs: the app's overdue job leaves it 'planned'
    due = str(utcnow().date() + timedelta(days=30))
    created = await payments.create(agent, amount="1234.50", due_date=due, reference="R-1")
    assert created["amount"] == "1234.50" and created["outstanding"] == "1234.50"
    assert created["status"] == "planned" and created["owner_id"] == str(agent.id)
    got = await payments.get(agent, created["id"])
    assert got.status_code == 200 and got.headers["ETag"] == '"v1"'

    url = f"{API}/payments/{created['id']}"
    no_match = await payments.client.patch(url, json={"note": "x"}, headers=agent.headers)
    assert no_match.status_code == 428
    stale = await payments.client.patch(
        url, json={"note": "x"}, headers={**agent.headers, "If-Match": '"v9"'}
    )
    assert stale.status_code == 412
    changed = await payments.client.patch(
        url, json={"amount": "1000", "note": "n"}, headers={**agent.headers, "If-Match": '"v1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["amount"] == "1000.00" and changed.headers["ETag"] == '"v2"'
    listed = await payments.client.get(f"{API}/payments", headers=agent.headers)
    assert listed.json()["items"] == [changed.json()]  # the page's plain rows show the same

    for i in range(3):
        await payments.create(agent, amount=f"{i + 1}.00", currency="JPY" if i else "EUR")
    page = await payments.client.get(f"{API}/payments?limit=2", headers=agent.headers)
    assert page.status_code == 200 and len(page.json()["items"]) == 2
    rest = await payments.client.get(
        f"{API}/payments?limit=2&cursor={page.json()['next_cursor']}", headers=agent.headers
    )
    assert len(rest.json()["items"]) == 2
    for query in ("due_to=0", "status=nope", "currency=XYZ", "sort=-nope", "stauts=paid"):
        refused = await payments.client.get(f"{API}/payments?{query}", headers=agent.headers)
        assert refused.status_code in (400, 422), (query, refused.text)
    jpy = await payments.client.get(f"{API}/payments?currency=JPY", headers=agent.headers)
    assert [p["amount"] for p in jpy.json()["items"]] in (["2", "3"], ["3", "2"])

    cancel = await payments.client.post(f"{url}/cancel", headers=agent.headers)
    assert cancel.status_code == 428
    cancel = await payments.client.post(
        f"{url}/cancel", json={"reason": "dup"}, headers={**agent.headers, "If-Match": '"v2"'}
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    types = [e.type for e in await payments.events()]
    assert types.count("payments.payment.created") == 4
    assert "payments.payment.updated" in types and "payments.payment.cancelled" in types


async def test_bad_input_is_a_precise_4xx(payments: Payments) -> None:
    agent = await payments.user("agent")
    post = payments.client.post
    url = f"{API}/payments"
    body = {"amount": "10.00", "currency": "EUR"}
    assert (await post(url, json=body, headers=agent.headers)).status_code == 400  # no key
    for bad in (
        {"amount": 10.0, "currency": "EUR"},  # a float
        {"amount": "10.001", "currency": "EUR"},  # more decimals than EUR has
        {"amount": "10.5", "currency": "JPY"},
        {"amount": "0", "currency": "EUR"},
        {"amount": "-5", "currency": "EUR"},
        {"amount": "10", "currency": "XYZ"},
        {"amount": "999999999999999", "currency": "EUR"},  # beyond MAX_MINOR
        {"amount": "10", "currency": "EUR", "reference": "a\u0000b"},
        {"amount": "10", "currency": "EUR", "link": {"kind": "deals.client", "id": "0" * 32}},
    ):
        response = await post(url, json=bad, headers={**agent.headers, **key()})
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await payments.client.get(url, headers=agent.headers)).json()["items"] == []
    admin = await payments.user("admin")
    rules = f"{API}/commission-rules"
    for bad in ({"insurer": "X"}, {"insurer": "X", "basis_points": 10, "fixed_amount": "1.00",
                "currency": "EUR"}, {"insurer": "X", "fixed_amount": "1.00"}):  # fmt: skip
        refused = await post(rules, json=bad, headers=admin.headers)
        assert refused.status_code == 422 and refused.json()["type"].endswith(
            "payments-invalid-rule"
        )
    assert (
        await post(rules, json=body | {"insurer": "X"}, headers=admin.headers)
    ).status_code == 422


async def test_ingestion_by_external_id_is_idempotent(payments: Payments) -> None:
    agent = await payments.user("agent")
    body = {"amount": "50.00", "currency": "EUR", "provider": "stripe", "external_id": "pi_1"}
    first = await payments.client.post(
        f"{API}/payments", json=body, headers={**agent.headers, **key()}
    )
    again = await payments.client.post(
        f"{API}/payments", json=body, headers={**agent.headers, **key()}
    )
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert first.headers["Location"].endswith(first.json()["id"])
    listed = await payments.client.get(
        f"{API}/payments?provider=stripe&external_id=pi_1", headers=agent.headers
    )
    assert len(listed.json()["items"]) == 1


async def test_a_create_writes_the_payment_and_its_event_in_one_statement(
    payments: Payments,
) -> None:
    """After the ``Idempotency-Key``'s claim, the payment and its event are one statement
    (they were an INSERT each); SQLite: the usual flush. Both rows are written."""
    agent = await payments.user("agent")
    await payments.create(agent)  # the role cache and the statements' plans warm
    with sent_to_postgresql() as sent:
        created = await payments.create(agent, amount="12.34", reference="ONE-TRIP")
    writes = [s for s in sent if "payments_payment" in s or "core_event" in s]
    if payments.app.context.engine.dialect.name == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("WITH crm2_row_0 AS"), sent
        assert "INSERT INTO core_event" in writes[0], sent
    else:
        assert sent == []
    got = await payments.get(agent, created["id"])
    assert got.json()["amount"] == "12.34" and got.json()["reference"] == "ONE-TRIP"
    async with payments.app.context.session_factory() as session:
        events = (
            await session.execute(
                select(EventRecord.type).where(EventRecord.subject == created["id"])
            )
        ).scalars()
        assert list(events) == ["payments.payment.created"]


async def test_a_fixed_commission_of_zero_is_422(payments: Payments) -> None:
    """A fixed_amount of "0.00" (falsy as a Decimal) was dropped: a rule with neither basis
    points nor an amount was stored, became the insurer's newest rule, and its "earns 0"
    reversed the commission already booked on the next payment."""
    admin = await payments.user("admin")
    rules = f"{API}/commission-rules"
    for amount in ("0.00", "0"):
        body = {"insurer": "Z", "fixed_amount": amount, "currency": "EUR"}
        refused = await payments.client.post(rules, json=body, headers=admin.headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await payments.client.get(rules, headers=admin.headers)).json()["items"] == []
