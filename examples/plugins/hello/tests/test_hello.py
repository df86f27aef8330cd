"""crm2-hello's tests, written with crm2's testing kit exactly as a third party would.

Once ``crm2-hello`` is pip-installed, ``@pytest.mark.crm2_plugins("hello")`` and
the ``crm2`` fixture are all a test needs; in the crm2 checkout it is not
installed, so each test passes the plugin module to ``crm2_app_factory``.
"""

from __future__ import annotations

import uuid

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
    assert "hello:read" in me["permissions"]
    assert "hello:write" not in me["permissions"]


async def test_hello_keeps_the_plugin_contract(crm2_app_factory: AppFactory) -> None:
    await assert_plugin_contract("hello", crm2_app_factory, extra_plugins=(crm2_hello.plugin,))
