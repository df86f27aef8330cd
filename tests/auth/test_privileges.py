"""Nobody grants what they do not hold: each auth:* permission tried as an outsider would."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, ROLES, KEYS, ME = (
    "/api/v1/auth/users",
    "/api/v1/auth/roles",
    "/api/v1/auth/api-keys",
    "/api/v1/auth/me",
)
PASSWORD = "correct horse battery staple"
ESCALATION = "urn:crm2:problem:privilege-escalation"
# deals gives the built-in manager and viewer roles permissions an outsider lacks
pytestmark = pytest.mark.crm2_plugins("deals")


@pytest.fixture
async def admin(crm2: Crm2TestApp) -> dict[str, str]:
    return await crm2.login("admin")


async def holder_of(crm2: Crm2TestApp, admin: dict[str, str], *permissions: str) -> dict[str, str]:
    """A user whose only role grants exactly ``permissions``; their auth headers."""
    name = "only-" + uuid.uuid4().hex[:8]
    body = {"name": name, "permissions": list(permissions)}
    response = await crm2.client.post(ROLES, json=body, headers=admin)
    assert response.status_code == 201, response.text
    return await crm2.login(name)


def assert_escalation(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == ESCALATION


async def me_of(crm2: Crm2TestApp, headers: dict[str, str]) -> dict[str, Any]:
    response = await crm2.client.get(ME, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def etag_of(crm2: Crm2TestApp, url: str, headers: dict[str, str]) -> str:
    response = await crm2.client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


# -- auth:api_keys ----------------------------------------------------------------------


async def test_api_keys_holder_cannot_mint_an_admin_key(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    keys_only = await holder_of(crm2, admin, "auth:api_keys")
    for role in ("admin", "manager", "viewer"):
        body = {"name": "escalate", "role": role}
        assert_escalation(await crm2.client.post(KEYS, json=body, headers=keys_only))
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert listed == []


async def test_api_keys_holder_may_mint_a_key_of_their_own_role(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    keys_only = await holder_of(crm2, admin, "auth:api_keys")
    role = (await me_of(crm2, keys_only))["roles"][0]
    response = await crm2.client.post(
        KEYS,
        json={"name": "same", "role": role, "current_password": TEST_PASSWORD},
        headers=keys_only,
    )
    assert response.status_code == 201, response.text


async def test_a_key_cannot_mint_a_stronger_key(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    keys_only = await holder_of(crm2, admin, "auth:api_keys")
    role = (await me_of(crm2, keys_only))["roles"][0]
    created = await crm2.client.post(
        KEYS, json={"name": "k", "role": role, "current_password": TEST_PASSWORD}, headers=keys_only
    )
    key_headers = {"Authorization": f"Bearer {created.json()['key']}"}
    body = {"name": "escalate", "role": "admin"}
    assert_escalation(await crm2.client.post(KEYS, json=body, headers=key_headers))


async def test_api_keys_holder_cannot_revoke_a_stronger_key(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """Revoking is touching: an integrator with auth:api_keys cannot switch off the
    admin's deployment key, only keys whose role they hold themselves."""
    made = await crm2.client.post(
        KEYS,
        json={"name": "deploy", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    keys_only = await holder_of(crm2, admin, "auth:api_keys")
    role = (await me_of(crm2, keys_only))["roles"][0]
    own = await crm2.client.post(
        KEYS,
        json={"name": "own", "role": role, "current_password": TEST_PASSWORD},
        headers=keys_only,
    )
    assert own.status_code == 201, own.text

    assert_escalation(await crm2.client.delete(f"{KEYS}/{made.json()['id']}", headers=keys_only))
    deploy = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await crm2.client.get(USERS, headers=deploy)).status_code == 200
    revoked = await crm2.client.delete(f"{KEYS}/{own.json()['id']}", headers=keys_only)
    assert revoked.status_code == 204, revoked.text
    by_admin = await crm2.client.delete(f"{KEYS}/{made.json()['id']}", headers=admin)
    assert by_admin.status_code == 204, by_admin.text
    assert (await crm2.client.get(USERS, headers=deploy)).status_code == 401


# -- auth:users -------------------------------------------------------------------------


async def test_users_holder_cannot_make_themselves_admin(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    users_only = await holder_of(crm2, admin, "auth:users")
    me = await me_of(crm2, users_only)
    url = f"{USERS}/{me['id']}"
    headers = {**users_only, "If-Match": await etag_of(crm2, url, users_only)}
    assert_escalation(await crm2.client.patch(url, json={"roles": ["admin"]}, headers=headers))
    # not even a role below their own: their own roles need the admin role
    assert_escalation(await crm2.client.patch(url, json={"roles": ["viewer"]}, headers=headers))
    assert (await me_of(crm2, users_only))["roles"] == me["roles"]


async def test_users_holder_cannot_change_their_own_roles_through_their_own_key(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    deputy = await holder_of(crm2, admin, "auth:users", "auth:api_keys")
    me = await me_of(crm2, deputy)
    helper = {"name": "helper", "permissions": ["auth:users"]}
    assert (await crm2.client.post(ROLES, json=helper, headers=admin)).status_code == 201
    created = await crm2.client.post(
        KEYS,
        json={"name": "me", "role": me["roles"][0], "current_password": TEST_PASSWORD},
        headers=deputy,
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    url = f"{USERS}/{me['id']}"
    headers = {**key, "If-Match": await etag_of(crm2, url, admin)}

    response = await crm2.client.patch(
        url, json={"roles": [*me["roles"], "helper"]}, headers=headers
    )

    assert_escalation(response)
    assert (await crm2.client.get(url, headers=admin)).json()["roles"] == me["roles"]


async def test_users_holder_cannot_reset_an_admins_password(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    users_only = await holder_of(crm2, admin, "auth:users")
    admin_id = (await me_of(crm2, admin))["id"]
    url = f"{USERS}/{admin_id}"
    headers = {**users_only, "If-Match": await etag_of(crm2, url, users_only)}
    for change in ({"password": "taken over by them"}, {"is_active": False}):
        assert_escalation(await crm2.client.patch(url, json=change, headers=headers))
    assert_escalation(await crm2.client.delete(url, headers=users_only))
    assert (await crm2.client.get(ME, headers=admin)).status_code == 200


async def test_users_holder_cannot_create_an_admin(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    users_only = await holder_of(crm2, admin, "auth:users")
    body = {"email": "mine@example.com", "password": PASSWORD, "roles": ["admin"]}
    assert_escalation(await crm2.client.post(USERS, json=body, headers=users_only))
    body["roles"] = ["manager"]  # manager holds deals permissions this caller does not
    assert_escalation(await crm2.client.post(USERS, json=body, headers=users_only))


async def test_users_holder_manages_users_within_their_own_rights(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    users_only = await holder_of(crm2, admin, "auth:users")
    role = (await me_of(crm2, users_only))["roles"][0]
    body = {"email": "peer@example.com", "password": PASSWORD, "roles": [role]}
    # the role grants auth:users: making such a peer needs one's own password
    refused = await crm2.client.post(USERS, json=body, headers=users_only)
    assert refused.status_code == 422, refused.text
    body["current_password"] = TEST_PASSWORD
    created = await crm2.client.post(USERS, json=body, headers=users_only)
    assert created.status_code == 201, created.text
    url = f"{USERS}/{created.json()['id']}"
    headers = {**users_only, "If-Match": created.headers["etag"]}
    new = {"password": "a new long password"}
    # the peer holds auth:users too, an administrator: the reset needs one's own password
    refused = await crm2.client.patch(url, json=new, headers=headers)
    assert refused.status_code == 422, refused.text
    confirmed = {**new, "current_password": TEST_PASSWORD}
    changed = await crm2.client.patch(url, json=confirmed, headers=headers)
    assert changed.status_code == 200, changed.text


# -- auth:roles -------------------------------------------------------------------------


async def test_roles_holder_cannot_grant_their_role_everything(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    roles_only = await holder_of(crm2, admin, "auth:roles")
    role = (await me_of(crm2, roles_only))["roles"][0]
    url = f"{ROLES}/{role}"
    headers = {**roles_only, "If-Match": await etag_of(crm2, url, roles_only)}
    for permissions in (["*"], ["auth:roles", "auth:users"], ["auth:roles", "core:plugins"]):
        body = {"permissions": permissions}
        assert_escalation(await crm2.client.patch(url, json=body, headers=headers))
    assert (await me_of(crm2, roles_only))["permissions"] == ["auth:roles"]


async def test_roles_holder_cannot_create_a_stronger_role_or_touch_admin(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    roles_only = await holder_of(crm2, admin, "auth:roles")
    body = {"name": "sidekick", "permissions": ["auth:users"]}
    assert_escalation(await crm2.client.post(ROLES, json=body, headers=roles_only))
    url = f"{ROLES}/admin"
    headers = {**roles_only, "If-Match": await etag_of(crm2, url, roles_only)}
    body = {"permissions": ["auth:roles"]}
    assert_escalation(await crm2.client.patch(url, json=body, headers=headers))
    weaker = {"name": "helper", "permissions": ["auth:roles"]}
    assert (await crm2.client.post(ROLES, json=weaker, headers=roles_only)).status_code == 201


# -- the full admin -----------------------------------------------------------------------


async def test_admin_grants_anything_and_changes_own_roles(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    await crm2.create_user("admin")  # another admin, so that this one may step down
    body = {"name": "root", "role": "admin", "current_password": TEST_PASSWORD}
    assert (await crm2.client.post(KEYS, json=body, headers=admin)).status_code == 201
    me = await me_of(crm2, admin)
    url = f"{USERS}/{me['id']}"
    headers = {**admin, "If-Match": await etag_of(crm2, url, admin)}
    response = await crm2.client.patch(url, json={"roles": ["admin", "viewer"]}, headers=headers)
    assert response.status_code == 200, response.text


# -- item 14: a disabled plugin's permissions are not shown ---------------------------------


async def test_disabled_plugins_permissions_are_not_listed(crm2_app_factory: Any) -> None:
    with_deals = await crm2_app_factory(plugins=["deals"])
    manager = await with_deals.login("manager")
    assert any(p.startswith("deals:") for p in (await me_of(with_deals, manager))["permissions"])
    without = await crm2_app_factory(plugins=[])
    manager = await without.login("manager")
    admin = await without.login("admin")
    assert not any(p.startswith("deals:") for p in (await me_of(without, manager))["permissions"])
    everything = (await me_of(without, admin))["permissions"]
    assert "auth:users" in everything and not any(p.startswith("deals:") for p in everything)
    listed = await without.client.get("/api/v1/auth/permissions", headers=admin)
    assert listed.status_code == 200
    names = [p["name"] for p in listed.json()]
    assert "auth:users" in names and not any(n.startswith("deals:") for n in names)


async def test_a_key_made_by_a_key_stops_when_its_maker_loses_the_right(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """The admin's key of role "minter" made a users key; "minter" then lost auth:users.
    The made key went on reading users on the admin's authority, more than its maker holds."""
    for name, permissions in {
        "minter": ["auth:api_keys", "auth:users"],
        "reader": ["auth:users"],
    }.items():
        body = {"name": name, "permissions": permissions}
        assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    maker = await crm2.client.post(
        KEYS, json={"name": "m", "role": "minter", "current_password": TEST_PASSWORD}, headers=admin
    )
    maker_headers = {"Authorization": f"Bearer {maker.json()['key']}"}
    made = await crm2.client.post(
        KEYS,
        json={"name": "r", "role": "reader", "current_password": TEST_PASSWORD},
        headers=maker_headers,
    )
    assert made.status_code == 201, made.text
    made_headers = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await crm2.client.get(USERS, headers=made_headers)).status_code == 200

    etag = await etag_of(crm2, f"{ROLES}/minter", admin)
    cut = await crm2.client.patch(
        f"{ROLES}/minter",
        json={"permissions": ["auth:api_keys"]},
        headers={**admin, "If-Match": etag},
    )
    assert cut.status_code == 200, cut.text

    assert (await crm2.client.get(USERS, headers=made_headers)).status_code == 401
    assert (await crm2.client.get(KEYS, headers=maker_headers)).status_code == 200
