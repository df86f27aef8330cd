"""One owner rule for every entity with an owner: a deactivated user owns nothing new.

The check used to live twice and drift: clients and deals refused an inactive
owner (422) while policies accepted one (201).
"""

from __future__ import annotations

import uuid
from typing import Any

from crm2_deals.models import Client
from deals_kit import API, Deals
from factories import make_client, make_deal, make_policy
from sqlalchemy import update

from crm2_core.api import User, utcnow

# Policy dates a year or more ahead of the real today (2026 here is next year): the
# policy job the app runs at start on the real clock never expires or announces them.
SHIFT = utcnow().year + 1 - 2026


def y(iso: str) -> str:
    """``iso`` (written as if next year were 2026) moved to the years this run needs."""
    return f"{int(iso[:4]) + SHIFT}{iso[4:]}"


async def _deactivate(deals: Deals, user_id: uuid.UUID) -> None:
    async with deals.app.context.session_factory() as session:
        await session.execute(update(User).where(User.id == user_id).values(is_active=False))
        await session.commit()


async def _setup(deals: Deals) -> tuple[Any, Any, Client]:
    admin = await deals.user("admin")
    gone = await deals.user("agent")
    await _deactivate(deals, gone.id)
    client = await make_client(deals.app, admin.id)
    return admin, gone, client


def _policy_body(client_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    body = {
        "number": f"P-{uuid.uuid4().hex[:8]}",
        "insurer": "Allianz",
        "client_id": str(client_id),
        "product": "Home",
        "premium": "120.00",
        "currency": "EUR",
        "start_date": y("2026-01-01"),
        "end_date": y("2027-01-01"),
    }
    return {**body, **fields}


async def test_a_client_cannot_be_given_to_a_deactivated_user(deals: Deals) -> None:
    admin, gone, client = await _setup(deals)

    created = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "X", "owner_id": str(gone.id)},
        headers=admin.headers,
    )
    etag = (await deals.client.get(f"{API}/clients/{client.id}", headers=admin.headers)).headers
    patched = await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"owner_id": str(gone.id)},
        headers={**admin.headers, "If-Match": etag["etag"]},
    )

    assert created.status_code == 422, created.text
    assert created.json()["type"] == "urn:crm2:problem:owner-not-active"
    assert patched.status_code == 422, patched.text


async def test_a_deal_cannot_be_given_to_a_deactivated_user(deals: Deals) -> None:
    admin, gone, client = await _setup(deals)
    deal = await make_deal(deals.app, client)

    created = await deals.client.post(
        f"{API}/deals",
        json={"title": "D", "client_id": str(client.id), "owner_id": str(gone.id)},
        headers=admin.headers,
    )
    patched = await deals.client.patch(
        f"{API}/deals/{deal.id}",
        json={"owner_id": str(gone.id)},
        headers={**admin.headers, "If-Match": '"v1"'},
    )

    assert created.status_code == 422, created.text
    assert created.json()["type"] == "urn:crm2:problem:owner-not-active"
    assert patched.status_code == 422, patched.text


async def test_a_policy_cannot_be_given_to_a_deactivated_user(deals: Deals) -> None:
    admin, gone, client = await _setup(deals)
    policy = await make_policy(deals.app, client)

    created = await deals.client.post(
        f"{API}/policies",
        json=_policy_body(client.id, owner_id=str(gone.id)),
        headers=admin.headers,
    )
    patched = await deals.client.patch(
        f"{API}/policies/{policy.id}",
        json={"owner_id": str(gone.id)},
        headers={**admin.headers, "If-Match": '"v1"'},
    )

    assert created.status_code == 422, created.text
    assert created.json()["type"] == "urn:crm2:problem:owner-not-active"
    assert patched.status_code == 422, patched.text


async def test_a_policy_does_not_default_to_a_deactivated_client_owner(deals: Deals) -> None:
    admin = await deals.user("admin")
    gone = await deals.user("agent")
    client = await make_client(deals.app, gone.id)
    await _deactivate(deals, gone.id)

    refused = await deals.client.post(
        f"{API}/policies", json=_policy_body(client.id), headers=admin.headers
    )
    given = await deals.client.post(
        f"{API}/policies",
        json=_policy_body(client.id, owner_id=str(admin.id)),
        headers=admin.headers,
    )

    assert refused.status_code == 422, refused.text
    assert given.status_code == 201, given.text


async def test_keeping_a_deactivated_owner_on_an_unrelated_change_is_allowed(
    deals: Deals,
) -> None:
    admin = await deals.user("admin")
    gone = await deals.user("agent")
    client = await make_client(deals.app, gone.id)
    await _deactivate(deals, gone.id)

    patched = await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"name": "Renamed", "owner_id": str(gone.id)},
        headers={**admin.headers, "If-Match": '"v1"'},
    )

    assert patched.status_code == 200, patched.text
