"""Record-level visibility: another agent's payment answers 404 on every id-bearing route and
is missing from lists, balances, the export, commissions, the stream and link resolution."""

from __future__ import annotations

import csv
import io

import httpx
from crm2_payments.visibility import RULES
from payments_kit import API, Payments, User, key

from crm2_core.api import resolve_entity
from crm2_core.testing.sse import EventStream, serving
from crm2_hookspecs import Principal


async def test_another_agents_payment_is_404_everywhere(payments: Payments) -> None:
    owner, other = await payments.user("agent"), await payments.user("agent")
    viewer = await payments.user("viewer")
    p = await payments.create(owner, amount="30.00", client_id="c-1", payer="=HYPERLINK(1)")
    url = f"{API}/payments/{p['id']}"
    h = other.headers
    client = payments.client
    assert (await client.get(url, headers=h)).status_code == 404
    assert (
        await client.patch(url, json={"note": "x"}, headers={**h, "If-Match": '"v1"'})
    ).status_code == 404
    assert (
        await client.post(f"{url}/cancel", headers={**h, "If-Match": '"v1"'})
    ).status_code == 404
    assert (await client.get(f"{url}/allocations", headers=h)).status_code == 404
    assert (await payments.move(other, p["id"], "payment", "1.00")).status_code == 404
    assert (await payments.move(other, p["id"], "refund", "1.00")).status_code == 404
    assert (await client.get(f"{API}/payments", headers=h)).json()["items"] == []
    assert (await client.get(f"{API}/balances?client_id=c-1", headers=h)).json()["balances"] == []
    assert (await client.get(url, headers=viewer.headers)).status_code == 200  # all_records
    assert (await payments.move(viewer, p["id"], "payment", "1.00")).status_code == 403

    # resolve_entity answers with the caller's visibility
    context = payments.app.context
    assert await resolve_entity(context, "payments.payment", p["id"], None) is not None
    principal_other = _principal(other)
    assert await resolve_entity(context, "payments.payment", p["id"], principal_other) is None
    found = await resolve_entity(context, "payments.payment", p["id"], _principal(owner))
    assert found is not None and found["amount"] == "30.00"

    # the stream: served by the core at /api/v1/streams/payments, payments:read to open it,
    # and per event the same rule as the list: the event's owner_id, or payments:all_records
    token = await client.post("/api/v1/streams/token", json={"channel": "payments"}, headers=h)
    assert token.status_code == 200, token.text
    assert (await client.get("/api/v1/streams/payments")).status_code == 401
    event = {"data": {"owner_id": str(owner.id)}}
    assert await RULES.can_see(_principal(owner), event)
    assert not await RULES.can_see(principal_other, event)
    assert await RULES.can_see(_principal(viewer, "payments:all_records"), event)


async def test_another_agents_external_ids_are_409_naming_no_payment(payments: Payments) -> None:
    """An external_id ingested on a payment the caller cannot see: a 409 that neither names
    the payment nor moves money; on the caller's own other payment: the same 409."""
    owner, other = await payments.user("agent"), await payments.user("agent")
    theirs = await payments.create(owner, provider="acme", external_id="inv-A")
    paid = await payments.move(owner, theirs["id"], "payment", "1.00", provider="acme",
                               external_id="tx-A")  # fmt: skip
    assert paid.status_code == 201, paid.text
    mine = await payments.create(other)
    again = await payments.client.post(
        f"{API}/payments",
        json={"amount": "1.00", "currency": "EUR", "provider": "acme", "external_id": "inv-A"},
        headers={**other.headers, **key()},
    )
    on_mine = await payments.move(other, mine["id"], "payment", "1.00", provider="acme",
                                  external_id="tx-A")  # fmt: skip
    for answer in (again, on_mine):
        assert answer.status_code == 409, answer.text
        assert answer.json()["type"].endswith("payments-external-id-taken")
        assert theirs["id"] not in answer.text
    assert (await payments.get(other, mine["id"])).json()["paid"] == "0.00"
    listed = (await payments.client.get(f"{API}/payments", headers=other.headers)).json()
    assert [item["id"] for item in listed["items"]] == [mine["id"]]
    # the owner's own replays still answer 200 with what was ingested
    replay = await payments.move(owner, theirs["id"], "payment", "1.00", provider="acme",
                                 external_id="tx-A")  # fmt: skip
    assert replay.status_code == 200 and replay.json()["payment"]["paid"] == "1.00"


async def test_export_is_versioned_formula_safe_and_visible_only(payments: Payments) -> None:
    manager = await payments.user("manager")
    agent = await payments.user("agent")
    await payments.create(agent, amount="12.50", payer="=cmd|'/C calc'!A0", reference="-5")
    await payments.create(manager, amount="7", currency="JPY")
    response = await payments.client.get(f"{API}/payments/export.csv", headers=manager.headers)
    assert response.status_code == 200
    assert response.headers["X-Export-Schema"] == "payments/1"
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    euro = next(r for r in rows if r["currency"] == "EUR")
    assert euro["payer"] == "'=cmd|'/C calc'!A0" and euro["reference"] == "-5"
    assert euro["amount"] == "12.50" and euro["outstanding"] == "12.50"
    assert next(r for r in rows if r["currency"] == "JPY")["amount"] == "7"
    denied = await payments.client.get(f"{API}/payments/export.csv", headers=agent.headers)
    assert denied.status_code == 403


def _principal(user: User, *permissions: str) -> Principal:
    """The principal the app builds for ``user`` (what the stream and resolvers get)."""
    return Principal(id=user.id, kind="user", roles=frozenset(), permissions=frozenset(permissions))


async def test_the_live_stream_delivers_each_agent_only_their_payments(
    payments: Payments,
) -> None:
    owner, other = await payments.user("agent"), await payments.user("agent")
    url = "/api/v1/streams/payments"
    async with (
        serving(payments.app) as base,
        httpx.AsyncClient(timeout=20.0) as http,
        http.stream("GET", f"{base}{url}", headers=owner.headers) as mine_response,
        http.stream("GET", f"{base}{url}", headers=other.headers) as theirs_response,
    ):
        mine, theirs = EventStream(mine_response), EventStream(theirs_response)
        await mine.connected()
        await theirs.connected()
        first = await payments.create(owner, amount="30.00")
        second = await payments.create(other, amount="40.00")
        got = await mine.next_event()
        assert got.event == "payments.payment.created"
        assert got.json()["subject"] == first["id"]
        # the other agent's first event is their own: the owner's was never sent to them
        seen = await theirs.next_event()
        assert seen.event == "payments.payment.created"
        assert seen.json()["subject"] == second["id"]


async def test_a_payment_is_owned_only_by_a_user_who_may_write_payments(
    payments: Payments,
) -> None:
    """A manager gave a payment to a viewer, or to a user whose roles hold no payments right
    at all (201): an owner who cannot change it, or not even see it. Deals refuses the same
    for its records (``owner-not-permitted``); nothing is written."""
    admin, manager, viewer = [await payments.user(r) for r in ("admin", "manager", "viewer")]
    hr = await payments.role_user(admin, "hr", ["auth:users"])
    for user in (viewer, hr):
        body = {"amount": "10.00", "currency": "EUR", "owner_id": str(user.id)}
        refused = await payments.client.post(
            f"{API}/payments", json=body, headers={**manager.headers, **key()}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "urn:crm2:problem:owner-not-permitted"
    listed = await payments.client.get(f"{API}/payments", headers=admin.headers)
    assert listed.json()["items"] == []
    agent = await payments.user("agent")
    given = await payments.create(manager, owner_id=str(agent.id))
    assert given["owner_id"] == str(agent.id)
