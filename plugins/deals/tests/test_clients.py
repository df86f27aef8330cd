"""Clients: CRUD, filters, sorting, the duplicate check, archive and delete rules, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from crm2_deals.models import Client, ClientEmail
from deals_kit import API, Deals
from sqlalchemy import select

from crm2_core.testing import sent_to_postgresql


async def test_create_get_update_client(deals: Deals) -> None:
    admin = await deals.user("admin")
    created = await deals.create_client(
        admin.headers,
        kind="company",
        name="Acme GmbH",
        emails=[" Info@Acme.example ", "info@acme.example"],
        phones=["+49 30 1234"],
        tax_id=" DE123 ",
        address="Berlin",
        tags=["vip", "vip", "b2b"],
    )
    assert created["emails"] == ["info@acme.example"]
    assert created["tax_id"] == "DE123"
    assert created["tags"] == ["vip", "b2b"]
    assert created["owner_id"] == str(admin.id)
    assert created["archived"] is False

    got = await deals.client.get(f"{API}/clients/{created['id']}", headers=admin.headers)
    assert got.status_code == 200 and got.headers["etag"] == '"v1"'
    patched = await deals.client.patch(
        f"{API}/clients/{created['id']}",
        json={"name": "Acme AG", "emails": ["sales@acme.example"], "tax_id": None},
        headers={**admin.headers, "If-Match": got.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == '"v2"'
    body = patched.json()
    assert (body["name"], body["emails"], body["tax_id"]) == (
        "Acme AG",
        ["sales@acme.example"],
        None,
    )
    async with deals.app.context.session_factory() as session:
        emails = (await session.execute(select(ClientEmail.email))).scalars().all()
        row = await session.get(Client, uuid.UUID(created["id"]))
    assert emails == ["sales@acme.example"]
    assert row is not None and "acme ag" in row.search_text and "4930" in row.search_text


async def test_unknown_field_and_bad_email_are_422(deals: Deals) -> None:
    admin = await deals.user("admin")
    for body in (
        {"kind": "person", "name": "X", "colour": "red"},
        {"kind": "person", "name": "X", "emails": ["not-an-email"]},
        {"kind": "robot", "name": "X"},
    ):
        response = await deals.client.post(f"{API}/clients", json=body, headers=admin.headers)
        assert response.status_code == 422, body


async def test_patch_without_if_match_is_428(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    response = await deals.client.patch(
        f"{API}/clients/{client['id']}", json={"name": "New"}, headers=admin.headers
    )
    assert response.status_code == 428


async def test_patch_with_stale_etag_is_412(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers)
    url, stale = f"{API}/clients/{client['id']}", {**admin.headers, "If-Match": '"v1"'}
    assert (await deals.client.patch(url, json={"name": "A"}, headers=stale)).status_code == 200
    response = await deals.client.patch(url, json={"name": "B"}, headers=stale)
    assert response.status_code == 412
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_duplicate_email_is_409_naming_the_client_unless_forced(deals: Deals) -> None:
    admin = await deals.user("admin")
    first = await deals.create_client(admin.headers, name="First", emails=["a@x.example"])
    body = {"kind": "person", "name": "Second", "emails": ["A@X.example"]}
    response = await deals.client.post(f"{API}/clients", json=body, headers=admin.headers)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("deals-duplicate-client")
    assert problem["existing"] == {"id": first["id"], "name": "First"}
    forced = await deals.client.post(
        f"{API}/clients", params={"force": "true"}, json=body, headers=admin.headers
    )
    assert forced.status_code == 201


async def test_duplicate_tax_id_is_409(deals: Deals) -> None:
    admin = await deals.user("admin")
    await deals.create_client(admin.headers, name="First", tax_id="IT999")
    body = {"kind": "company", "name": "Other", "tax_id": "IT999"}
    response = await deals.client.post(f"{API}/clients", json=body, headers=admin.headers)
    assert response.status_code == 409


async def test_a_client_the_agent_cannot_see_is_no_duplicate_to_them(deals: Deals) -> None:
    """Unique per what the caller sees: a 409 on another agent's client told the agent
    that someone they cannot see has a client with that address (or tax id)."""
    one, two = await deals.user("agent"), await deals.user("agent")
    await deals.create_client(one.headers, name="Secret", emails=["s@x.example"], tax_id="IT1")
    body = {"kind": "person", "name": "Mine", "emails": ["s@x.example"], "tax_id": "IT1"}
    response = await deals.client.post(f"{API}/clients", json=body, headers=two.headers)
    assert response.status_code == 201, response.text
    mine = response.json()
    again = {"kind": "person", "name": "Again", "emails": ["s@x.example"]}
    response = await deals.client.post(f"{API}/clients", json=again, headers=two.headers)
    assert response.status_code == 409  # their own client is one
    assert response.json()["existing"] == {"id": mine["id"], "name": "Mine"}
    assert "Secret" not in response.text
    # a PATCH that adds the other agent's address: no 409 either
    other = await deals.create_client(two.headers, name="Other")
    patched = await deals.client.patch(
        f"{API}/clients/{other['id']}", json={"tax_id": "IT1"},
        headers={**two.headers, "If-Match": f'"v{other["version"]}"'},
    )  # fmt: skip
    assert patched.status_code == 409 and "Secret" not in patched.text  # "Mine" has IT1
    # who sees every client is still told of both
    admin = await deals.user("admin")
    seen = await deals.client.post(f"{API}/clients", json=again, headers=admin.headers)
    assert seen.status_code == 409 and seen.json()["existing"]["name"] == "Secret"


async def test_list_filters(deals: Deals) -> None:
    admin = await deals.user("admin")
    agent = await deals.user("agent")
    a = await deals.create_client(
        admin.headers, name="Anna Rossi", emails=["anna@r.example"], phones=["+39 06 555"]
    )
    b = await deals.create_client(admin.headers, kind="company", name="Beta SpA", tags=["vip"])
    c = await deals.create_client(admin.headers, name="100%_Carlo", owner_id=str(agent.id))

    async def ids(**params: str) -> set[str]:
        response = await deals.client.get(f"{API}/clients", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids(q="ROSSI") == {a["id"]}
    assert await ids(q="anna@r") == {a["id"]}
    assert await ids(q="0655") == {a["id"]}
    assert await ids(q="100%_") == {c["id"]}
    assert await ids(q="%") == {c["id"]}
    assert await ids(tag="vip") == {b["id"]}
    assert await ids(kind="company") == {b["id"]}
    assert await ids(owner=str(agent.id)) == {c["id"]}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(updated_since=future) == set()
    await deals.client.patch(
        f"{API}/clients/{b['id']}",
        json={"archived": True},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert await ids(archived="true") == {b["id"]}
    assert await ids(archived="false") == {a["id"], c["id"]}
    assert await ids() == {a["id"], b["id"], c["id"]}


async def test_sort_and_cursor_pagination(deals: Deals) -> None:
    admin = await deals.user("admin")
    for name in ("Delta", "alpha", "Charlie", "Bravo", "Echo"):
        await deals.create_client(admin.headers, name=name)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"sort": "name", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (
            await deals.client.get(f"{API}/clients", params=params, headers=admin.headers)
        ).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 5
    newest = await deals.client.get(
        f"{API}/clients", params={"sort": "-created_at"}, headers=admin.headers
    )
    assert newest.json()["items"][0]["name"] == "Echo"


async def test_cursor_of_another_sort_is_400(deals: Deals) -> None:
    admin = await deals.user("admin")
    for _ in range(3):
        await deals.create_client(admin.headers)
    page = await deals.client.get(
        f"{API}/clients", params={"sort": "name", "limit": "1"}, headers=admin.headers
    )
    cursor = page.json()["next_cursor"]
    response = await deals.client.get(
        f"{API}/clients", params={"sort": "-updated_at", "cursor": cursor}, headers=admin.headers
    )
    assert response.status_code == 400


async def test_events_created_updated_archived(deals: Deals) -> None:
    admin = await deals.user("admin")
    client = await deals.create_client(admin.headers, name="Evented")
    url = f"{API}/clients/{client['id']}"
    await deals.client.patch(
        url, json={"name": "Renamed"}, headers={**admin.headers, "If-Match": '"v1"'}
    )
    await deals.client.patch(
        url, json={"archived": True}, headers={**admin.headers, "If-Match": '"v2"'}
    )
    rows = [e for e in await deals.events() if e.subject == client["id"]]
    assert [e.type for e in rows] == [
        "deals.client.created",
        "deals.client.updated",
        "deals.client.archived",
    ]
    assert rows[0].data["name"] == "Evented" and rows[1].data["changed"] == ["name"]
    assert rows[0].actor_id == str(admin.id)


async def test_delete_rules(deals: Deals) -> None:
    admin, agent = await deals.user("admin"), await deals.user("agent")
    used = await deals.create_client(admin.headers)
    await deals.create_deal(admin.headers, used["id"])
    free = await deals.create_client(admin.headers)
    own = await deals.create_client(agent.headers)
    forbidden = await deals.client.delete(f"{API}/clients/{own['id']}", headers=agent.headers)
    assert forbidden.status_code == 403
    in_use = await deals.client.delete(f"{API}/clients/{used['id']}", headers=admin.headers)
    assert in_use.status_code == 409 and in_use.json()["type"].endswith("deals-in-use")
    gone = await deals.client.delete(f"{API}/clients/{free['id']}", headers=admin.headers)
    assert gone.status_code == 204
    again = await deals.client.get(f"{API}/clients/{free['id']}", headers=admin.headers)
    assert again.status_code == 404


async def test_idempotent_replay_creates_one_client(deals: Deals) -> None:
    admin = await deals.user("admin")
    headers = {**admin.headers, "Idempotency-Key": "client-create-1"}
    body = {"kind": "person", "name": "Once", "emails": ["once@x.example"]}
    first = await deals.client.post(f"{API}/clients", json=body, headers=headers)
    second = await deals.client.post(f"{API}/clients", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json()["id"] == second.json()["id"]
    listed = await deals.client.get(f"{API}/clients", params={"q": "once"}, headers=admin.headers)
    assert len(listed.json()["items"]) == 1


async def test_agent_cannot_assign_a_client_to_someone_else(deals: Deals) -> None:
    agent, other = await deals.user("agent"), await deals.user("agent")
    body = {"kind": "person", "name": "X", "owner_id": str(other.id)}
    response = await deals.client.post(f"{API}/clients", json=body, headers=agent.headers)
    assert response.status_code == 403


async def test_viewer_reads_but_cannot_write(deals: Deals) -> None:
    admin, viewer = await deals.user("admin"), await deals.user("viewer")
    client = await deals.create_client(admin.headers)
    got = await deals.client.get(f"{API}/clients/{client['id']}", headers=viewer.headers)
    assert got.status_code == 200
    body = {"kind": "person", "name": "Nope"}
    assert (
        await deals.client.post(f"{API}/clients", json=body, headers=viewer.headers)
    ).status_code == 403


async def test_a_create_is_its_duplicate_check_and_one_write_on_postgresql(
    counting_deals: Deals,
) -> None:
    """The duplicate check (a read, no ``BEGIN``), then the client, its e-mail rows and its
    event in one statement sent at the commit by itself; with ``?force=true`` the write
    alone. Both write every row (SQLite: the usual flush)."""
    deals = counting_deals
    admin = await deals.user("admin")
    await deals.create_client(admin.headers)  # the role cache and the plan warm
    postgresql = deals.app.context.engine.dialect.name == "postgresql"
    with sent_to_postgresql() as sent:
        checked = await deals.create_client(
            admin.headers, emails=["one@trips.example", "two@trips.example"], tax_id="T-1"
        )
    kinds = [s.split()[0].rstrip(";") for s in sent if "auth_" not in s]
    assert kinds == (["SELECT", "WITH"] if postgresql else []), sent
    with sent_to_postgresql() as sent:
        forced = await deals.client.post(
            f"{API}/clients?force=true",
            json={"kind": "person", "name": "Twin", "emails": ["one@trips.example"]},
            headers=admin.headers,
        )
    assert forced.status_code == 201, forced.text
    kinds = [s.split()[0].rstrip(";") for s in sent if "auth_" not in s]
    assert kinds == (["WITH"] if postgresql else []), sent
    twin = forced.json()
    agent = await deals.user("agent")
    with sent_to_postgresql() as sent:  # another owner: is that user active? (a read)
        theirs = await deals.create_client(admin.headers, owner_id=str(agent.id))
    # (the credentials cache may read auth_user too, but never with EXISTS)
    kinds = [s.split()[0] for s in sent if "auth_" not in s or s.startswith("SELECT EXISTS")]
    assert kinds == (["SELECT", "WITH"] if postgresql else []), sent
    assert theirs["owner_id"] == str(agent.id)
    async with deals.app.context.session_factory() as session:
        emails = (
            await session.execute(
                select(ClientEmail.client_id, ClientEmail.email).order_by(ClientEmail.email)
            )
        ).all()
        stored = await session.get(Client, uuid.UUID(checked["id"]))
    assert sorted((str(c), e) for c, e in emails) == sorted(
        [
            (checked["id"], "one@trips.example"),
            (twin["id"], "one@trips.example"),
            (checked["id"], "two@trips.example"),
        ]
    )
    assert stored is not None and stored.tax_id == "T-1" and stored.version == 1
    assert "two@trips.example" in stored.search_text
    await deals.app.settle_events()
    created = {e.subject for e in await deals.events("deals.client.created")}
    assert {checked["id"], twin["id"]} <= created
    again = await deals.client.post(
        f"{API}/clients",
        json={"kind": "person", "name": "Third", "emails": ["TWO@trips.example"]},
        headers=admin.headers,
    )
    assert again.status_code == 409 and again.json()["existing"]["id"] == checked["id"]
