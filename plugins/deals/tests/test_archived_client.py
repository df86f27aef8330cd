"""An archived client takes no new deals, nor deals moved to it: 409 naming it, nothing
written. Its notes and policies are history and contracts, still allowed; unarchived,
it takes deals again.

A deal could be created on (or moved to) an archived client, which then showed open
business in no client list a user works from.
"""

from __future__ import annotations

from typing import Any

import pytest
from crm2_deals.models import Deal
from deals_kit import API, Deals
from factories import make_client, make_deal
from sqlalchemy import func, select

DEALS = f"{API}/deals"


async def _deals_on(deals: Deals, client_id: Any) -> int:
    async with deals.app.context.session_factory() as session:
        stmt = select(func.count()).where(Deal.client_id == client_id)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


def _refused(answer: Any, client: Any) -> None:
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"].endswith("deals-client-archived"), problem
    assert client.name in problem["detail"]
    assert problem["client"] == {"id": str(client.id), "name": client.name}


@pytest.mark.parametrize("how", ["guessed", "first", "in a stage", "for another owner"])
async def test_a_deal_on_an_archived_client_is_409_naming_it(deals: Deals, how: str) -> None:
    admin = await deals.user("admin")
    agent = await deals.user("agent")
    client = await make_client(deals.app, admin.id, archived=True)
    body: dict[str, Any] = {"title": "Late", "client_id": str(client.id)}
    if how == "guessed":  # this process knows where deals start: the one-statement create
        await deals.create_deal(admin.headers, str((await make_client(deals.app, admin.id)).id))
    elif how == "in a stage":
        pipeline = await deals.pipeline(admin.headers)
        body["stage_id"] = deals.stage(pipeline, "Qualified")["id"]
    elif how == "for another owner":
        body["owner_id"] = str(agent.id)
    answer = await deals.client.post(DEALS, json=body, headers=admin.headers)
    _refused(answer, client)
    assert await _deals_on(deals, client.id) == 0


async def test_a_deal_moved_to_an_archived_client_is_409(deals: Deals) -> None:
    admin = await deals.user("admin")
    here = await make_client(deals.app, admin.id)
    archived = await make_client(deals.app, admin.id, archived=True)
    deal = await make_deal(deals.app, here, owner_id=admin.id)
    answer = await deals.client.patch(
        f"{DEALS}/{deal.id}",
        json={"client_id": str(archived.id)},
        headers={**admin.headers, "If-Match": f'"v{deal.version}"'},
    )
    _refused(answer, archived)
    assert await _deals_on(deals, archived.id) == 0


async def test_an_archived_clients_own_deals_and_notes_stay_usable(deals: Deals) -> None:
    """What it had stays editable; a note on it is still history; unarchived, it takes
    new deals again."""
    admin = await deals.user("admin")
    client = await make_client(deals.app, admin.id)
    deal = await deals.create_deal(admin.headers, str(client.id))
    etag = (await deals.client.get(f"{API}/clients/{client.id}", headers=admin.headers)).headers
    archived = await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"archived": True},
        headers={**admin.headers, "If-Match": etag["etag"]},
    )
    assert archived.status_code == 200, archived.text
    edited = await deals.client.patch(
        f"{DEALS}/{deal['id']}",
        json={"title": "Renamed", "client_id": str(client.id)},
        headers={**admin.headers, "If-Match": f'"v{deal["version"]}"'},
    )
    assert edited.status_code == 200, edited.text
    note = {"kind": "note", "subject": "Said goodbye", "client_id": str(client.id)}
    noted = await deals.client.post(f"{API}/activities", json=note, headers=admin.headers)
    assert noted.status_code == 201, noted.text
    back = await deals.client.patch(
        f"{API}/clients/{client.id}",
        json={"archived": False},
        headers={**admin.headers, "If-Match": archived.headers["etag"]},
    )
    assert back.status_code == 200, back.text
    await deals.create_deal(admin.headers, str(client.id))
