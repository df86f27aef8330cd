"""crm2-hello's tests, written with crm2's testing kit exactly as a third party would.

Once ``crm2-hello`` is pip-installed, ``@pytest.mark.crm2_plugins("hello")`` and
the ``crm2`` fixture are all a test needs; in the crm2 checkout it is not
installed, so each test passes the plugin module to ``crm2_app_factory``.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

import crm2_hello.plugin
from crm2_core.testing import Crm2TestApp, assert_plugin_contract
from crm2_core.testing.pytest_plugin import AppFactory

GREETINGS = "/api/v1/hello/greetings"


@pytest.fixture
async def hello(crm2_app_factory: AppFactory) -> Crm2TestApp:
    return await crm2_app_factory(extra_plugins=(crm2_hello.plugin,))


async def test_agent_creates_a_greeting_with_the_configured_word(
    crm2_app_factory: AppFactory,
) -> None:
    app = await crm2_app_factory(
        extra_plugins=(crm2_hello.plugin,), plugin_settings={"hello": {"greeting": "Hi"}}
    )
    agent = await app.login("agent")
    response = await app.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Hi, Ada!"
    assert body["version"] == 1
    assert response.headers["etag"] == '"v1"'
    assert response.headers["location"] == f"{GREETINGS}/{body['id']}"


async def test_created_greeting_is_readable_by_a_viewer(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    created = (await hello.client.post(GREETINGS, json={"name": "Bob"}, headers=agent)).json()
    viewer = await hello.login("viewer")
    response = await hello.client.get(f"{GREETINGS}/{created['id']}", headers=viewer)
    assert response.status_code == 200, response.text
    assert response.json() == created
    assert response.headers["etag"] == '"v1"'


async def test_viewer_cannot_create_a_greeting(hello: Crm2TestApp) -> None:
    viewer = await hello.login("viewer")
    response = await hello.client.post(GREETINGS, json={"name": "Eve"}, headers=viewer)
    assert response.status_code == 403
    assert "hello:write" in response.json()["detail"]


async def test_greetings_need_authentication(hello: Crm2TestApp) -> None:
    response = await hello.client.get(GREETINGS)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_field_is_rejected(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    response = await hello.client.post(
        GREETINGS, json={"name": "Ada", "message": "forged"}, headers=agent
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_missing_greeting_is_a_hello_problem(hello: Crm2TestApp) -> None:
    admin = await hello.login("admin")
    response = await hello.client.get(f"{GREETINGS}/{uuid.uuid4()}", headers=admin)
    assert response.status_code == 404
    assert response.json()["type"] == "urn:crm2:problem:hello-greeting-not-found"


async def test_list_walks_every_greeting_once_with_the_cursor(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    names = [f"person {i}" for i in range(5)]
    for name in names:
        response = await hello.client.post(GREETINGS, json={"name": name}, headers=agent)
        assert response.status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await hello.client.get(GREETINGS, params=params, headers=agent)).json()
        pages += 1
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == names
    assert pages == 3


async def test_same_idempotency_key_creates_one_greeting(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent") | {"Idempotency-Key": "greet-ada-1"}
    first = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    again = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    listed = (await hello.client.get(GREETINGS, headers=agent)).json()
    assert len(listed["items"]) == 1


async def test_update_with_current_etag_bumps_the_version(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    created = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    url = created.headers["location"]
    response = await hello.client.patch(
        url,
        json={"message": "Good morning, Ada"},
        headers=agent | {"If-Match": created.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Good morning, Ada"
    assert response.headers["etag"] == '"v2"'


async def test_update_with_stale_etag_is_412(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    created = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    url, stale = created.headers["location"], created.headers["etag"]
    first = await hello.client.patch(
        url, json={"message": "one"}, headers=agent | {"If-Match": stale}
    )
    assert first.status_code == 200
    second = await hello.client.patch(
        url, json={"message": "two"}, headers=agent | {"If-Match": stale}
    )
    assert second.status_code == 412
    assert (await hello.client.get(url, headers=agent)).json()["message"] == "one"


async def test_update_without_if_match_is_428(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    created = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    response = await hello.client.patch(
        created.headers["location"], json={"message": "no etag"}, headers=agent
    )
    assert response.status_code == 428


async def test_permissions_are_granted_to_the_proposed_roles(hello: Crm2TestApp) -> None:
    viewer = await hello.login("viewer")
    me = (await hello.client.get("/api/v1/auth/me", headers=viewer)).json()
    assert {"hello:read", "hello:all_records"} <= set(me["permissions"])
    assert not {"hello:write", "hello:export"} & set(me["permissions"])
    agent = await hello.login("agent")
    me = (await hello.client.get("/api/v1/auth/me", headers=agent)).json()
    assert "hello:write" in me["permissions"] and "hello:all_records" not in me["permissions"]


# -- what the kit gives hello: record rule, owner rule, filters, sort, export, delete ----


async def _greet(app: Crm2TestApp, headers: dict[str, str], name: str, **extra: str) -> Any:
    response = await app.client.post(GREETINGS, json={"name": name, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _names(app: Crm2TestApp, headers: dict[str, str], **params: Any) -> list[str]:
    response = await app.client.get(GREETINGS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [g["name"] for g in response.json()["items"]]


async def test_an_agent_sees_and_changes_only_their_own_greetings(hello: Crm2TestApp) -> None:
    ada, bob = await hello.user("agent"), await hello.user("agent")
    mine = await _greet(hello, ada.headers, "Ada's")
    await _greet(hello, bob.headers, "Bob's")
    assert await _names(hello, ada.headers) == ["Ada's"]
    other = f"{GREETINGS}/{mine['id']}"
    assert (await hello.client.get(other, headers=bob.headers)).status_code == 404
    patch = await hello.client.patch(
        other, json={"message": "mine now"}, headers=bob.headers | {"If-Match": '"v1"'}
    )
    assert patch.status_code == 404  # another owner's greeting is as missing as none
    manager = await hello.login("manager")  # hello:all_records
    assert sorted(await _names(hello, manager)) == ["Ada's", "Bob's"]


async def test_owner_rule_forbidden_for_others_and_refused_for_inactive_users(
    hello: Crm2TestApp,
) -> None:
    agent, manager, gone = (
        await hello.user("agent"),
        await hello.user("manager"),
        await hello.user("agent"),
    )
    given = await hello.client.post(
        GREETINGS, json={"name": "x", "owner_id": str(manager.id)}, headers=agent.headers
    )
    assert given.status_code == 403
    assert given.json()["type"] == "urn:crm2:problem:owner-forbidden"
    assigned = await _greet(hello, manager.headers, "for the agent", owner_id=str(agent.id))
    assert assigned["owner_id"] == str(agent.id)
    assert await _names(hello, agent.headers) == ["for the agent"]
    admin = await hello.login("admin")
    user_url = f"/api/v1/auth/users/{gone.id}"
    etag = (await hello.client.get(user_url, headers=admin)).headers["etag"]
    off = await hello.client.patch(
        user_url, json={"is_active": False}, headers=admin | {"If-Match": etag}
    )
    assert off.status_code == 200, off.text
    refused = await hello.client.post(
        GREETINGS, json={"name": "y", "owner_id": str(gone.id)}, headers=manager.headers
    )
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:crm2:problem:owner-not-active"
    moved = await hello.client.patch(
        f"{GREETINGS}/{assigned['id']}",
        json={"owner_id": str(gone.id)},
        headers=manager.headers | {"If-Match": '"v1"'},
    )
    assert moved.status_code == 422


async def test_filters_and_sort_come_from_one_declaration(hello: Crm2TestApp) -> None:
    agent = await hello.user("agent")
    manager = await hello.login("manager")
    for name in ("Cleo", "ada", "Bea"):
        await _greet(hello, agent.headers, name)
    await _greet(hello, manager, "Dan")
    assert await _names(hello, manager, sort="name") == ["Bea", "Cleo", "Dan", "ada"]
    assert await _names(hello, manager, sort="-created_at") == ["Dan", "Bea", "ada", "Cleo"]
    assert await _names(hello, manager, q="E", sort="name") == ["Bea", "Cleo"]
    assert sorted(await _names(hello, manager, owner=str(agent.id))) == ["Bea", "Cleo", "ada"]
    assert await _names(hello, manager, created_since="2999-01-01T00:00:00") == []
    document = (await hello.client.get("/openapi.json")).json()
    params = {p["name"]: p for p in document["paths"][GREETINGS]["get"]["parameters"]}
    assert params["owner"]["description"] == "owner's user id"
    assert params["sort"]["schema"]["enum"] == ["created_at", "-created_at", "name", "-name"]
    for bad in ({"sort": "message"}, {"owner": "me"}, {"q": "x" * 101}, {"created_since": "now"}):
        response = await hello.client.get(GREETINGS, params=bad, headers=manager)
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"] == ["query", next(iter(bad))]


async def test_export_is_formula_safe_csv_of_the_visible_greetings(hello: Crm2TestApp) -> None:
    agent, manager = await hello.user("agent"), await hello.user("manager")
    await _greet(hello, agent.headers, "=HYPERLINK(1)")
    await _greet(hello, manager.headers, "Zed")
    response = await hello.client.get(f"{GREETINGS}/export?sort=name", headers=manager.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-columns-version"] == "1"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["id", "name", "message", "owner_email", "created_at"]
    assert [r[1] for r in rows[1:]] == ["'=HYPERLINK(1)", "Zed"]  # the formula defused
    assert rows[1][3] == agent.email
    only_zed = await hello.client.get(f"{GREETINGS}/export?q=zed", headers=manager.headers)
    assert [r[1] for r in csv.reader(io.StringIO(only_zed.text))][1:] == ["Zed"]
    assert (await hello.client.get(f"{GREETINGS}/export", headers=agent.headers)).status_code == 403


async def test_delete_checks_if_match_when_sent(hello: Crm2TestApp) -> None:
    agent = await hello.login("agent")
    url = f"{GREETINGS}/{(await _greet(hello, agent, 'Ada'))['id']}"
    stale = await hello.client.delete(url, headers=agent | {"If-Match": '"v9"'})
    assert stale.status_code == 412
    assert (await hello.client.delete(url, headers=agent | {"If-Match": '"v1"'})).status_code == 204
    assert (await hello.client.get(url, headers=agent)).status_code == 404


async def test_hello_keeps_the_plugin_contract(crm2_app_factory: AppFactory) -> None:
    await assert_plugin_contract("hello", crm2_app_factory, extra_plugins=(crm2_hello.plugin,))


async def test_a_greeting_is_written_in_one_statement(hello: Crm2TestApp) -> None:
    """One INSERT of the plugin's table per create: the request's own statements (the
    relay and handlers beside it run in tasks of their own and are not counted)."""
    from crm2_core.testing import recorded_statements

    agent = await hello.login("agent")
    await hello.client.post(GREETINGS, json={"name": "Warm"}, headers=agent)  # role cache
    with recorded_statements(hello.context.engine) as seen:
        response = await hello.client.post(GREETINGS, json={"name": "Ada"}, headers=agent)
    assert response.status_code == 201, response.text
    writes = [s for s in seen if "hello_" in s]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO hello_greeting"), seen
