"""Admin endpoints for users, roles and permissions; /me; declared permissions and defaults."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import Permission, PluginManifest, hookimpl

PASSWORD = "correct horse battery staple"
USERS, ROLES, PERMISSIONS, ME = (
    "/api/v1/auth/users",
    "/api/v1/auth/roles",
    "/api/v1/auth/permissions",
    "/api/v1/auth/me",
)


class GadgetsPlugin:
    """A throw-away plugin that declares one permission proposed for managers."""

    manifest = PluginManifest(name="gadgets", title="Gadgets")

    @hookimpl
    def crm2_permissions(self) -> Sequence[Permission]:
        return [Permission("gadgets:export", "Export gadgets", default_roles=("manager",))]


@pytest.fixture
async def admin(crm2: Crm2TestApp) -> dict[str, str]:
    return await crm2.login("admin")


async def create_user(
    crm2: Crm2TestApp, admin: dict[str, str], email: str = "new@example.com", **extra: Any
) -> Any:
    body = {"email": email, "password": PASSWORD, "roles": ["agent"], **extra}
    return await crm2.client.post(USERS, json=body, headers=admin)


async def login(crm2: Crm2TestApp, email: str, password: str = PASSWORD) -> Any:
    return await crm2.client.post("/api/v1/auth/login", json={"email": email, "password": password})


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# -- users --------------------------------------------------------------------------------


async def test_created_user_can_log_in(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    response = await create_user(crm2, admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["roles"] == ["agent"]
    assert "password" not in body and "password_hash" not in body
    assert response.headers["location"] == f"{USERS}/{body['id']}"
    assert response.headers["etag"] == '"v1"'
    assert (await login(crm2, "new@example.com")).status_code == 200


async def test_user_without_roles_is_a_viewer(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    body = {"email": "plain@example.com", "password": PASSWORD}
    response = await crm2.client.post(USERS, json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["roles"] == ["viewer"]


async def test_duplicate_email_is_409(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    await create_user(crm2, admin)
    assert_problem(await create_user(crm2, admin, email="New@Example.com"), 409)


async def test_parallel_duplicate_emails_give_one_201_and_409s(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    responses = await asyncio.gather(*(create_user(crm2, admin) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]


async def test_unknown_role_is_422(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    response = await create_user(crm2, admin, roles=["agent", "wizard"])
    assert_problem(response, 422)
    assert response.json()["type"] == "urn:crm2:problem:unknown-role"


async def test_unknown_field_is_422(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    assert_problem(await create_user(crm2, admin, is_superuser=True), 422)


async def test_short_password_is_422(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    assert_problem(await create_user(crm2, admin, password="short"), 422)


INVISIBLE_PASSWORDS = {
    "zero-width-spaces": "\u200b" * 10,
    "controls": "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f",
    "bom-padded": "abc" + "\ufeff" * 7,
}


@pytest.mark.parametrize("password", INVISIBLE_PASSWORDS.values(), ids=INVISIBLE_PASSWORDS.keys())
async def test_password_without_ten_visible_characters_is_422_on_create_and_change(
    crm2: Crm2TestApp, admin: dict[str, str], password: str
) -> None:
    """Ten zero-width spaces passed ``min_length=10`` and became a password nobody can see."""
    refused = await create_user(crm2, admin, password=password)
    assert_problem(refused, 422)
    assert "visible characters" in refused.text
    created = await create_user(crm2, admin)
    url = f"{USERS}/{created.json()['id']}"

    changed = await crm2.client.patch(
        url, json={"password": password}, headers={**admin, "If-Match": created.headers["etag"]}
    )

    assert_problem(changed, 422)
    assert "visible characters" in changed.text
    assert (await crm2.client.get(url, headers=admin)).headers["etag"] == '"v1"'
    assert (await login(crm2, "new@example.com")).status_code == 200


@pytest.mark.parametrize("role", ["agent", "manager", "viewer"])
async def test_non_admin_gets_403_on_users(crm2: Crm2TestApp, role: str) -> None:
    headers = await crm2.login(role)
    assert_problem(await crm2.client.get(USERS, headers=headers), 403)
    assert_problem(await create_user(crm2, headers), 403)


async def test_users_list_needs_authentication(crm2: Crm2TestApp) -> None:
    assert_problem(await crm2.client.get(USERS), 401)


async def test_list_users_is_paginated(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    for n in range(3):
        await create_user(crm2, admin, email=f"page{n}@example.com")
    first = (await crm2.client.get(USERS, params={"limit": 2}, headers=admin)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await crm2.client.get(
        USERS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
    )
    emails = [u["email"] for u in first["items"] + rest.json()["items"]]
    assert len(emails) == len(set(emails)) == 4  # the admin and three users


async def test_get_user_returns_etag(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    user_id = (await create_user(crm2, admin)).json()["id"]
    response = await crm2.client.get(f"{USERS}/{user_id}", headers=admin)
    assert response.status_code == 200
    assert response.headers["etag"] == '"v1"'


async def test_unknown_user_is_404(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    assert_problem(await crm2.client.get(f"{USERS}/{uuid.uuid4()}", headers=admin), 404)


async def test_patch_without_if_match_is_428(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    user_id = (await create_user(crm2, admin)).json()["id"]
    response = await crm2.client.patch(
        f"{USERS}/{user_id}", json={"full_name": "Ada"}, headers=admin
    )
    assert_problem(response, 428)


async def test_patch_with_stale_if_match_is_412(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    user_id = (await create_user(crm2, admin)).json()["id"]
    url = f"{USERS}/{user_id}"
    first = await crm2.client.patch(
        url, json={"full_name": "Ada"}, headers={**admin, "If-Match": '"v1"'}
    )
    assert first.status_code == 200
    stale = await crm2.client.patch(
        url, json={"full_name": "Grace"}, headers={**admin, "If-Match": '"v1"'}
    )
    assert_problem(stale, 412)


async def test_patch_with_weak_if_match_is_412_and_changes_nothing(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """If-Match compares strongly (RFC 9110 section 13.1.1): W/"v1" never matches "v1"."""
    user_id = (await create_user(crm2, admin)).json()["id"]
    url = f"{USERS}/{user_id}"
    for sent in ('W/"v1"', 'W/"v1", "x"'):
        weak = await crm2.client.patch(
            url, json={"full_name": "Ada"}, headers={**admin, "If-Match": sent}
        )
        assert_problem(weak, 412)
        assert "weak" in weak.json()["detail"]
    unchanged = await crm2.client.get(url, headers=admin)
    assert unchanged.headers["etag"] == '"v1"'
    assert unchanged.json()["full_name"] != "Ada"
    strong_in_list = await crm2.client.patch(
        url, json={"full_name": "Ada"}, headers={**admin, "If-Match": 'W/"v1", "v1"'}
    )
    assert strong_in_list.status_code == 200, strong_in_list.text


async def test_patch_with_current_if_match_is_200_with_new_etag(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await create_user(crm2, admin)
    url = f"{USERS}/{created.json()['id']}"
    response = await crm2.client.patch(
        url,
        json={"full_name": "Ada", "roles": ["manager"]},
        headers={**admin, "If-Match": created.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"v2"'
    assert response.json()["full_name"] == "Ada"
    assert response.json()["roles"] == ["manager"]
    assert (await crm2.client.get(url, headers=admin)).headers["etag"] == '"v2"'


async def test_deactivated_user_cannot_refresh_or_log_in(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await create_user(crm2, admin)
    pair = (await login(crm2, "new@example.com")).json()
    response = await crm2.client.patch(
        f"{USERS}/{created.json()['id']}",
        json={"is_active": False},
        headers={**admin, "If-Match": created.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    refresh = await crm2.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert_problem(refresh, 401)
    assert_problem(await login(crm2, "new@example.com"), 401)


async def test_password_change_ends_existing_sessions(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await create_user(crm2, admin)
    pair = (await login(crm2, "new@example.com")).json()
    await crm2.client.patch(
        f"{USERS}/{created.json()['id']}",
        json={"password": "a brand new passphrase"},
        headers={**admin, "If-Match": created.headers["etag"]},
    )
    refresh = await crm2.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert_problem(refresh, 401)
    assert_problem(await login(crm2, "new@example.com"), 401)
    assert (await login(crm2, "new@example.com", "a brand new passphrase")).status_code == 200


async def test_delete_user(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    user_id = (await create_user(crm2, admin)).json()["id"]
    await login(crm2, "new@example.com")  # leaves a refresh token row behind
    assert (await crm2.client.delete(f"{USERS}/{user_id}", headers=admin)).status_code == 204
    assert_problem(await crm2.client.get(f"{USERS}/{user_id}", headers=admin), 404)
    assert_problem(await login(crm2, "new@example.com"), 401)


async def test_admin_cannot_delete_themselves(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    me = (await crm2.client.get(ME, headers=admin)).json()
    assert_problem(await crm2.client.delete(f"{USERS}/{me['id']}", headers=admin), 403)


# -- /me and permissions -----------------------------------------------------------------


async def test_me_returns_roles_and_effective_permissions(crm2: Crm2TestApp) -> None:
    headers = await crm2.login("manager", "viewer")
    body = (await crm2.client.get(ME, headers=headers)).json()
    assert body["roles"] == ["manager", "viewer"]
    assert isinstance(body["permissions"], list)
    assert "auth:users" not in body["permissions"]
    assert "*" not in body["permissions"]


async def test_me_spells_out_every_permission_for_admin(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    body = (await crm2.client.get(ME, headers=admin)).json()
    declared = {p["name"] for p in (await crm2.client.get(PERMISSIONS, headers=admin)).json()}
    assert body["roles"] == ["admin"]
    assert set(body["permissions"]) == declared | {"*"}
    assert {"auth:users", "auth:roles", "auth:api_keys"} <= set(body["permissions"])
    assert body["permissions"] == sorted(body["permissions"])


async def test_permissions_lists_the_auth_permissions(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    response = await crm2.client.get(PERMISSIONS, headers=admin)
    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()}
    assert {"auth:users", "auth:roles", "auth:api_keys"} <= set(by_name)
    assert by_name["auth:users"]["plugin"] == "auth"
    assert by_name["auth:users"]["description"]


async def test_builtin_roles_exist(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    roles = {r["name"]: r for r in (await crm2.client.get(ROLES, headers=admin)).json()}
    assert {"admin", "manager", "agent", "viewer"} <= set(roles)
    assert all(roles[name]["builtin"] for name in ("admin", "manager", "agent", "viewer"))
    assert roles["admin"]["permissions"] == ["*"]


# -- roles -------------------------------------------------------------------------------


async def test_custom_role_grants_its_permissions(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    response = await crm2.client.post(
        ROLES,
        json={"name": "user-admins", "description": "HR", "permissions": ["auth:users"]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["permissions"] == ["auth:users"]
    assert response.json()["builtin"] is False
    headers = await crm2.login("user-admins")
    assert (await crm2.client.get(USERS, headers=headers)).status_code == 200
    assert_problem(await crm2.client.get(ROLES, headers=headers), 403)


async def test_role_with_unknown_permission_is_422(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    response = await crm2.client.post(
        ROLES, json={"name": "wizards", "permissions": ["magic:cast"]}, headers=admin
    )
    assert_problem(response, 422)
    assert response.json()["type"] == "urn:crm2:problem:unknown-permission"


async def test_duplicate_role_is_409(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    assert_problem(await crm2.client.post(ROLES, json={"name": "agent"}, headers=admin), 409)


async def test_parallel_role_creation_gives_one_201_and_409s(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(crm2.client.post(ROLES, json={"name": "auditors"}, headers=admin) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "viewer"])
async def test_deleting_a_builtin_role_is_409(
    crm2: Crm2TestApp, admin: dict[str, str], name: str
) -> None:
    response = await crm2.client.delete(f"{ROLES}/{name}", headers=admin)
    assert_problem(response, 409)
    assert response.json()["type"] == "urn:crm2:problem:builtin-role"


async def test_deleting_a_role_in_use_is_409(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    await crm2.client.post(ROLES, json={"name": "auditors"}, headers=admin)
    await crm2.create_user("auditors")
    response = await crm2.client.delete(f"{ROLES}/auditors", headers=admin)
    assert_problem(response, 409)
    assert response.json()["type"] == "urn:crm2:problem:role-in-use"


async def test_a_role_deleted_while_it_is_given_is_one_or_the_other(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """Either the delete wins (the user is refused the role: 422) or the new user does
    (the role is in use: 409), whichever order the database runs them in."""
    outcomes = set()
    for i in range(5):
        name = f"temp{i}"
        assert (
            await crm2.client.post(ROLES, json={"name": name}, headers=admin)
        ).status_code == 201
        deleted, created = await asyncio.gather(
            crm2.client.delete(f"{ROLES}/{name}", headers=admin),
            create_user(crm2, admin, email=f"temp{i}@example.com", roles=[name]),
        )
        outcomes.add((deleted.status_code, created.status_code))
    assert outcomes <= {(204, 422), (409, 201)}, outcomes


async def test_deleting_an_unused_custom_role_is_204(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    await crm2.client.post(ROLES, json={"name": "auditors"}, headers=admin)
    assert (await crm2.client.delete(f"{ROLES}/auditors", headers=admin)).status_code == 204
    assert_problem(await crm2.client.get(f"{ROLES}/auditors", headers=admin), 404)


async def test_role_patch_needs_if_match_and_bumps_etag(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await crm2.client.post(ROLES, json={"name": "auditors"}, headers=admin)
    url = f"{ROLES}/auditors"
    assert_problem(await crm2.client.patch(url, json={"description": "x"}, headers=admin), 428)
    response = await crm2.client.patch(
        url,
        json={"permissions": ["auth:roles"]},
        headers={**admin, "If-Match": created.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == ["auth:roles"]
    assert response.headers["etag"] != created.headers["etag"]


@pytest.mark.parametrize("permissions", [[], ["auth:users"]])
async def test_taking_everything_from_the_admin_role_is_409(
    crm2: Crm2TestApp, admin: dict[str, str], permissions: list[str]
) -> None:
    url = f"{ROLES}/admin"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    body = {"permissions": permissions}
    response = await crm2.client.patch(url, json=body, headers={**admin, "If-Match": etag})
    assert_problem(response, 409)
    assert response.json()["type"] == "urn:crm2:problem:admin-holds-everything"
    assert (await crm2.client.get(url, headers=admin)).json()["permissions"] == ["*"]


async def test_an_emptied_admin_role_gets_everything_back_at_start_up(
    crm2_app_factory: Any,
) -> None:
    from sqlalchemy import delete

    from crm2_core.auth.models import RolePermission

    first = await crm2_app_factory()
    async with first.context.session_factory() as session:  # as an older version allowed
        await session.execute(delete(RolePermission).where(RolePermission.role_name == "admin"))
        await session.commit()

    restarted = await crm2_app_factory()

    admin = await restarted.login("admin")
    role = await restarted.client.get(f"{ROLES}/admin", headers=admin)
    assert role.status_code == 200, role.text
    assert role.json()["permissions"] == ["*"]


async def test_non_admin_gets_403_on_roles(crm2: Crm2TestApp) -> None:
    headers = await crm2.login("manager")
    assert_problem(await crm2.client.get(ROLES, headers=headers), 403)
    assert_problem(await crm2.client.get(PERMISSIONS, headers=headers), 403)


# -- permissions declared by plugins -------------------------------------------------------


async def test_plugin_permission_is_granted_to_its_default_roles(crm2_app_factory: Any) -> None:
    app = await crm2_app_factory(extra_plugins=(GadgetsPlugin(),))
    admin = await app.login("admin")
    roles = {r["name"]: r for r in (await app.client.get(ROLES, headers=admin)).json()}
    assert "gadgets:export" in roles["manager"]["permissions"]
    assert "gadgets:export" not in roles["agent"]["permissions"]
    manager = await app.login("manager")
    me = (await app.client.get(ME, headers=manager)).json()
    assert "gadgets:export" in me["permissions"]


async def test_removed_default_grant_is_not_restored_on_restart(crm2_app_factory: Any) -> None:
    first = await crm2_app_factory(extra_plugins=(GadgetsPlugin(),))
    admin = await first.login("admin")
    manager = await first.client.get(f"{ROLES}/manager", headers=admin)
    kept = [p for p in manager.json()["permissions"] if p != "gadgets:export"]
    response = await first.client.patch(
        f"{ROLES}/manager",
        json={"permissions": kept},
        headers={**admin, "If-Match": manager.headers["etag"]},
    )
    assert response.status_code == 200, response.text

    restarted = await crm2_app_factory(extra_plugins=(GadgetsPlugin(),))
    admin = await restarted.login("admin")
    after = (await restarted.client.get(f"{ROLES}/manager", headers=admin)).json()
    assert "gadgets:export" not in after["permissions"]
    declared = {p["name"] for p in (await restarted.client.get(PERMISSIONS, headers=admin)).json()}
    assert "gadgets:export" in declared


async def test_a_default_grant_at_start_up_revokes_keys_beyond_their_creator(
    crm2_app_factory: Any,
) -> None:
    first = await crm2_app_factory()
    admin = await first.login("admin")
    manager = (await first.client.get(f"{ROLES}/manager", headers=admin)).json()["permissions"]
    body = {"name": "keyer", "permissions": sorted({*manager, "auth:api_keys"})}
    assert (await first.client.post(ROLES, json=body, headers=admin)).status_code == 201
    keyer = await first.login("keyer")
    body = {"name": "k", "role": "manager", "current_password": TEST_PASSWORD}
    created = await first.client.post("/api/v1/auth/api-keys", json=body, headers=keyer)
    assert created.status_code == 201, created.text

    # manager gains gadgets:export, which keyer does not hold
    restarted = await crm2_app_factory(extra_plugins=(GadgetsPlugin(),))

    key = {"X-API-Key": created.json()["key"]}
    assert (await restarted.client.get(PERMISSIONS, headers=key)).status_code == 401


async def _me_id(crm2: Crm2TestApp, headers: dict[str, str]) -> str:
    return str((await crm2.client.get(ME, headers=headers)).json()["id"])


async def test_last_active_admin_cannot_be_deactivated_or_demoted(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    user_id = await _me_id(crm2, admin)
    etag = (await crm2.client.get(f"{USERS}/{user_id}", headers=admin)).headers["ETag"]
    for change in ({"is_active": False}, {"roles": ["manager"]}):
        response = await crm2.client.patch(
            f"{USERS}/{user_id}", json=change, headers={**admin, "If-Match": etag}
        )
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("last-admin")


@pytest.mark.parametrize("removal", ["deactivate", "demote", "delete"])
async def test_the_last_two_admins_removing_each_other_at_once_leave_one(
    crm2: Crm2TestApp, removal: str
) -> None:
    from crm2_core.auth import repository as repo

    one, two = await crm2.user("admin"), await crm2.user("admin")
    etags = {
        u.id: (await crm2.client.get(f"{USERS}/{u.id}", headers=one.headers)).headers["etag"]
        for u in (one, two)
    }

    async def remove(actor: Any, user_id: uuid.UUID) -> int:
        url = f"{USERS}/{user_id}"
        if removal == "delete":
            return (await crm2.client.delete(url, headers=actor.headers)).status_code
        change = {"is_active": False} if removal == "deactivate" else {"roles": ["manager"]}
        headers = {**actor.headers, "If-Match": etags[user_id]}
        return (await crm2.client.patch(url, json=change, headers=headers)).status_code

    answers = await asyncio.gather(remove(one, two.id), remove(two, one.id))

    async with crm2.context.session_factory() as session:
        assert await repo.count_active_admins(session) == 1, answers
    assert sorted(answers) in ([200, 409], [204, 409], [200, 401], [204, 401]), answers


async def test_an_admin_can_be_demoted_while_another_remains(crm2: Crm2TestApp) -> None:
    first = await crm2.login("admin")
    await crm2.login("admin")
    user_id = await _me_id(crm2, first)
    etag = (await crm2.client.get(f"{USERS}/{user_id}", headers=first)).headers["ETag"]
    response = await crm2.client.patch(
        f"{USERS}/{user_id}", json={"roles": ["manager"]}, headers={**first, "If-Match": etag}
    )
    assert response.status_code == 200
    assert response.json()["roles"] == ["manager"]


async def test_password_is_taken_exactly_as_typed(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    body = {"email": "spaces@example.com", "password": "  padded secret  ", "roles": ["viewer"]}
    assert (await crm2.client.post(USERS, json=body, headers=admin)).status_code == 201
    login = "/api/v1/auth/login"
    exact = {"email": "spaces@example.com", "password": "  padded secret  "}
    trimmed = {"email": "spaces@example.com", "password": "padded secret"}
    assert (await crm2.client.post(login, json=exact)).status_code == 200
    assert (await crm2.client.post(login, json=trimmed)).status_code == 401


@pytest.mark.parametrize(
    "look_alike",
    [
        "\uff41\uff44\uff4d\uff49\uff4e@example.com",  # full-width "admin"
        "\uff41dmin@example.com",
        "ad\ufb01n@example.com",  # the "fi" ligature
        "\u0430dmin@example.com",  # a Cyrillic a in a Latin local part
        "admin@ex\u0430mple.com",  # and in a domain label
        "p\u03b1ypal@example.com",  # a Greek alpha
    ],
)
async def test_a_compatibility_look_alike_address_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str], look_alike: str
) -> None:
    """One address, one account: a form that NFKC folds into another address (full-width
    letters, ligatures) is a 422 naming the plain form, and nothing is created."""
    response = await crm2.client.post(
        USERS, json={"email": look_alike, "password": PASSWORD}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == ["body", "email"]
    listed = (await crm2.client.get(USERS, headers=admin)).json()["items"]
    assert look_alike not in [u["email"] for u in listed]


async def test_an_address_in_one_script_per_part_is_taken(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """The mixed-script rule refuses a part mixing Latin with Cyrillic or Greek, not an
    address in Cyrillic, or a Cyrillic domain under a Latin local part."""
    for email in (
        "\u0438\u0432\u0430\u043d@example.com",
        "ivan@\u043f\u0440\u0438\u043c\u0435\u0440.ru",
    ):
        response = await create_user(crm2, admin, email=email)
        assert response.status_code == 201, (email, response.text)


async def test_an_account_made_with_a_mixed_script_address_before_the_rule_still_signs_in(
    crm2: Crm2TestApp,
) -> None:
    """The rule is for new addresses: one stored before it keeps signing in."""
    from crm2_core.auth.schemas import UserCreate

    old = "\u0430dmin-old@example.com"
    data = UserCreate.model_construct(
        email=old, password=PASSWORD, full_name="", roles=["agent"], is_active=True
    )
    async with crm2.context.session_factory() as session:
        await crm2.auth.create_user(session, data)
        await session.commit()
    assert (await login(crm2, old)).status_code == 200


async def test_a_role_patch_that_changes_nothing_writes_nothing(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """``PATCH {}`` (or the role as it is) bumped the version, so every client's ETag went
    stale, and published auth.role.changed, so every process dropped its role cache and
    every open stream of the role's holders was checked again, for nothing."""
    body = {"name": "watcher", "description": "reads", "permissions": ["core:plugins"]}
    assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    await crm2.settle_events()
    top = await crm2.context.streams.source.top()
    etag = (await crm2.client.get(f"{ROLES}/watcher", headers=admin)).headers["etag"]
    for same in ({}, {"description": "reads"}, {"permissions": ["core:plugins", "core:plugins"]}):
        headers = {**admin, "If-Match": etag}
        response = await crm2.client.patch(f"{ROLES}/watcher", json=same, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1, same
        assert response.headers["etag"] == etag
    await crm2.settle_events()
    assert await crm2.context.streams.source.top() == top
    stale = await crm2.client.patch(
        f"{ROLES}/watcher", json={}, headers={**admin, "If-Match": '"v9"'}
    )
    assert_problem(stale, 412)  # an unchanged role still checks the ETag
    changed = await crm2.client.patch(
        f"{ROLES}/watcher", json={"description": "sees"}, headers={**admin, "If-Match": etag}
    )
    assert changed.json()["version"] == 2


# -- optional If-Match on the admin DELETEs ------------------------------------------------


async def test_deleting_a_user_with_a_stale_if_match_is_412_and_keeps_them(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await create_user(crm2, admin)
    url = f"{USERS}/{created.json()['id']}"
    patched = await crm2.client.patch(
        url, json={"full_name": "Ada"}, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert patched.status_code == 200, patched.text
    stale = await crm2.client.delete(url, headers={**admin, "If-Match": created.headers["etag"]})
    assert_problem(stale, 412)
    assert (await crm2.client.get(url, headers=admin)).status_code == 200
    current = {**admin, "If-Match": patched.headers["etag"]}
    assert (await crm2.client.delete(url, headers=current)).status_code == 204


async def test_deleting_a_role_with_a_stale_if_match_is_412_and_keeps_it(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await crm2.client.post(ROLES, json={"name": "auditors"}, headers=admin)
    url = f"{ROLES}/auditors"
    patched = await crm2.client.patch(
        url, json={"description": "x"}, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert patched.status_code == 200, patched.text
    stale = await crm2.client.delete(url, headers={**admin, "If-Match": created.headers["etag"]})
    assert_problem(stale, 412)
    assert (await crm2.client.get(url, headers=admin)).status_code == 200
    current = {**admin, "If-Match": patched.headers["etag"]}
    assert (await crm2.client.delete(url, headers=current)).status_code == 204


async def test_the_admin_deletes_declare_an_optional_if_match(crm2: Crm2TestApp) -> None:
    paths = (await crm2.client.get("/openapi.json")).json()["paths"]
    for path in (f"{USERS}/{{user_id}}", f"{ROLES}/{{name}}"):
        operation = paths[path]["delete"]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert headers["If-Match"]["required"] is False, path
        assert "412" in operation["responses"], path
