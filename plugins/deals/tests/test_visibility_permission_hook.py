"""Who sees every record honours ``crm2_check_permission``, as who may own one does.

``deals:all_records`` was read from the caller's roles alone: a plugin that denied
it a manager (a branch rule, a suspension) still let them list, read and export
every other owner's clients and deals, and a deal could be given to a user the
hook denied it although its client was someone else's.
"""

from __future__ import annotations

from typing import Any

from deals_kit import API, Deals, seed_defaults
from factories import make_client, make_deal

from crm2_core.testing import Crm2TestApp, PermissionVotes

ALL_RECORDS = "deals:all_records"


async def _app(crm2_app_factory: Any) -> tuple[Deals, PermissionVotes]:
    rule = PermissionVotes(ALL_RECORDS, depends=("deals",))  # a branch rule: confined users
    app: Crm2TestApp = await crm2_app_factory(plugins=["deals", rule.name], extra_plugins=(rule,))
    await seed_defaults(app)
    return Deals(app), rule


async def test_a_manager_a_hook_denies_all_records_sees_only_their_own(
    crm2_app_factory: Any,
) -> None:
    deals, rule = await _app(crm2_app_factory)
    manager, agent = await deals.user("manager"), await deals.user("agent")
    rule.deny(manager.id)
    theirs = await make_client(deals.app, agent.id, emails=[])
    deal = await make_deal(deals.app, theirs)
    mine = await deals.create_client(manager.headers)

    listed = await deals.client.get(f"{API}/clients", headers=manager.headers)
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["items"]] == [mine["id"]]
    got = await deals.client.get(f"{API}/clients/{theirs.id}", headers=manager.headers)
    assert got.status_code == 404, got.text
    got = await deals.client.get(f"{API}/deals/{deal.id}", headers=manager.headers)
    assert got.status_code == 404, got.text
    deals_listed = await deals.client.get(f"{API}/deals", headers=manager.headers)
    assert deals_listed.json()["items"] == [], deals_listed.text
    exported = await deals.client.get(f"{API}/clients/export", headers=manager.headers)
    assert exported.status_code == 200, exported.text
    assert mine["id"] in exported.text and str(theirs.id) not in exported.text

    rule.votes.clear()  # the hook decides, per request: the roles' grant is back
    got = await deals.client.get(f"{API}/clients/{theirs.id}", headers=manager.headers)
    assert got.status_code == 200, got.text


async def test_a_deal_goes_to_an_owner_a_hook_denies_all_records_only_on_their_client(
    crm2_app_factory: Any,
) -> None:
    deals, rule = await _app(crm2_app_factory)
    admin, agent, other = (
        await deals.user("admin"),
        await deals.user("agent"),
        await deals.user("manager"),
    )
    rule.deny(other.id)
    client = await make_client(deals.app, agent.id, emails=[])
    body = {"title": "Given", "client_id": str(client.id), "owner_id": str(other.id)}
    given = await deals.client.post(f"{API}/deals", json=body, headers=admin.headers)
    assert given.status_code == 422, given.text
    assert given.headers["content-type"].startswith("application/problem+json")
