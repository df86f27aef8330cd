"""A leaving user's payments are handed over (``crm2_reassign_user``), then the user can go.

Every owner column of payments refuses a user's delete (``RESTRICT``). Payments did not
answer ``crm2_reassign_user``: ``POST /auth/users/{id}/reassign`` left their payments
behind and answered 409, so an agent who had ever owned a payment could never be deleted.
"""

from __future__ import annotations

from payments_kit import API, Payments

USERS = "/api/v1/auth/users"


async def test_reassign_hands_the_payments_over_then_delete_works(payments: Payments) -> None:
    admin, leaving, heir = [await payments.user(r) for r in ("admin", "agent", "agent")]
    made = await payments.create(leaving, amount="30.00")
    assert (await payments.move(leaving, made["id"], "payment", "10.00")).status_code == 201
    response = await payments.client.post(
        f"{USERS}/{leaving.id}/reassign", json={"to": str(heir.id)}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved"]["payments_payment"] == 1
    theirs = await payments.get(heir, made["id"])
    assert theirs.status_code == 200 and theirs.json()["owner_id"] == str(heir.id)
    assert theirs.json()["version"] == made["version"] + 2  # the receipt, then the hand-over
    ledger = await payments.client.get(
        f"{API}/payments/{made['id']}/allocations", headers=heir.headers
    )
    assert [a["amount"] for a in ledger.json()] == ["10.00"]
    (handed,) = [
        e
        for e in await payments.events("payments.payment.updated")
        if e.data["changed"] == ["owner_id"]
    ]
    assert handed.data["owner_id"] == str(heir.id)
    assert handed.data["previous_owner_id"] == str(leaving.id)
    gone = await payments.client.delete(f"{USERS}/{leaving.id}", headers=admin.headers)
    assert gone.status_code == 204, gone.text


async def test_reassign_to_someone_who_may_not_own_payments_is_422(payments: Payments) -> None:
    """A viewer holds no payments:write: handing them payments would make an owner who cannot
    change them (the rule deals applies to its records); nothing moves."""
    admin, leaving, viewer = [await payments.user(r) for r in ("admin", "agent", "viewer")]
    made = await payments.create(leaving)
    response = await payments.client.post(
        f"{USERS}/{leaving.id}/reassign", json={"to": str(viewer.id)}, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:owner-not-permitted"
    still = await payments.get(leaving, made["id"])
    assert still.status_code == 200 and still.json()["version"] == made["version"]
