"""A request decided on rights its caller lost meanwhile changes nothing.

The request authenticates (its permissions from the role cache), then the caller is
demoted or their role loses a permission, then the request writes: the caller's
standing and roles as stored decide, for every change of a user or a role.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from crm2_core.auth.schemas import RoleCreate, RoleUpdate, UserCreate, UserUpdate
from crm2_core.errors import Crm2Error
from crm2_core.http.etag import etag_for
from crm2_core.testing import Crm2TestApp, TestDatabase
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import Principal

USERS, ROLES, ME = "/api/v1/auth/users", "/api/v1/auth/roles", "/api/v1/auth/me"
LOST = ["demoted", "role-changed"]


@pytest.fixture
async def admin(crm2: Crm2TestApp) -> dict[str, str]:
    return await crm2.login("admin")


async def put_roles(crm2: Crm2TestApp, admin: dict[str, str], **roles: list[str]) -> None:
    for name, permissions in roles.items():
        body = {"name": name, "permissions": permissions}
        assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201


async def patch(crm2: Crm2TestApp, admin: dict[str, str], url: str, body: dict[str, Any]) -> None:
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    response = await crm2.client.patch(url, json=body, headers={**admin, "If-Match": etag})
    assert response.status_code == 200, response.text


async def actor_then_lose(
    crm2: Crm2TestApp, admin: dict[str, str], role: str, keeps: list[str], lost: str
) -> Principal:
    """Signs in a user of ``role``, authenticates their request, then takes their
    authority: demoted to viewer, or ``role`` cut down to ``keeps``."""
    signed_in = await crm2.user(role)
    headers = {k.lower(): v for k, v in signed_in.headers.items()}
    actor = await crm2.context.authenticator.from_headers(headers)
    if lost == "demoted":
        await patch(crm2, admin, f"{USERS}/{signed_in.id}", {"roles": ["viewer"]})
    else:
        await patch(crm2, admin, f"{ROLES}/{role}", {"permissions": keeps})
    return actor


async def refused(call: Any) -> None:
    with pytest.raises(Crm2Error) as raised:
        await call
    assert raised.value.status in (401, 403), raised.value


@pytest.mark.parametrize("lost", LOST)
async def test_a_user_changed_or_deleted_on_authority_lost_meanwhile_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str], lost: str
) -> None:
    """Deactivating, resetting, demoting or deleting a user needs their permissions:
    held by the caller's roles as stored, not as the request found them."""
    await put_roles(crm2, admin, keeper=["auth:users", "core:plugins"], reader=["core:plugins"])
    target = await crm2.create_user("reader", email="target@example.com")
    actor = await actor_then_lose(crm2, admin, "keeper", ["auth:users"], lost)

    changes = [
        UserUpdate(is_active=False),
        UserUpdate(password="a brand new secret"),
        UserUpdate(roles=[]),
    ]
    async with crm2.context.session_factory() as session:
        version = (await crm2.auth.get_user(session, target)).version
    for change in changes:
        # a fresh session, as a request's: update_user reads in sessions of its own first
        async with crm2.context.session_factory() as session:
            await refused(crm2.auth.update_user(session, target, etag_for(version), change, actor))
            await session.rollback()
    async with crm2.context.session_factory() as session:
        await refused(crm2.auth.delete_user(session, target, actor))
        await session.rollback()

    shown = (await crm2.client.get(f"{USERS}/{target}", headers=admin)).json()
    assert (shown["is_active"], shown["roles"], shown["version"]) == (True, ["reader"], 1)


@pytest.mark.parametrize("lost", LOST)
async def test_a_role_made_changed_or_deleted_on_authority_lost_meanwhile_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str], lost: str
) -> None:
    """A role's permissions, old and new, must be held by the caller's roles as stored."""
    await put_roles(crm2, admin, roler=["auth:roles", "core:plugins"], reader=["core:plugins"])
    actor = await actor_then_lose(crm2, admin, "roler", ["auth:roles"], lost)

    async with crm2.context.session_factory() as session:
        made = RoleCreate(name="late", permissions=["core:plugins"])
        await refused(crm2.auth.create_role(session, made, actor))
        await session.rollback()
    async with crm2.context.session_factory() as session:
        role = await crm2.auth.get_role(session, "reader")
        change = RoleUpdate(description="changed", permissions=["core:plugins"])
        await refused(
            crm2.auth.update_role(session, "reader", etag_for(role.version), change, actor)
        )
        await session.rollback()
    async with crm2.context.session_factory() as session:
        await refused(crm2.auth.delete_role(session, "reader", actor))
        await session.rollback()

    roles = {r["name"]: r for r in (await crm2.client.get(ROLES, headers=admin)).json()}
    assert "late" not in roles
    assert (roles["reader"]["description"], roles["reader"]["version"]) == ("", 1)


@pytest.mark.parametrize("lost", LOST)
async def test_a_key_revoked_on_authority_lost_meanwhile_stays(
    crm2: Crm2TestApp, admin: dict[str, str], lost: str
) -> None:
    """Revoking a key needs its role, as making it does: held as stored."""
    await put_roles(crm2, admin, keyer=["auth:api_keys", "core:plugins"], reader=["core:plugins"])
    made = await crm2.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "sync", "role": "reader", "current_password": TEST_PASSWORD},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    key_id = uuid.UUID(made.json()["id"])
    actor = await actor_then_lose(crm2, admin, "keyer", ["auth:api_keys"], lost)

    async with crm2.context.session_factory() as session:
        await refused(crm2.auth.revoke_api_key(session, key_id, actor))
        await session.rollback()
    listed = (await crm2.client.get("/api/v1/auth/api-keys", headers=admin)).json()["items"]
    assert [k["revoked_at"] for k in listed if k["id"] == str(key_id)] == [None]


async def lock_waiters(crm2: Crm2TestApp) -> int:
    async with crm2.context.session_factory() as probe:
        waiting = await probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE "
                "datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


@pytest.mark.parametrize("lost", LOST)
async def test_a_demotion_racing_a_user_creation_waits_for_the_grant_to_commit(
    crm2: Crm2TestApp, crm2_database: TestDatabase, admin: dict[str, str], lost: str
) -> None:
    """The creator's rights are checked as stored and kept so until the new user commits:
    a demotion committed in between let a user be made with a role its maker had lost."""
    if crm2_database.backend != "postgresql":
        pytest.skip("SQLite writes one at a time: a demotion cannot commit in between")
    await put_roles(crm2, admin, hirer=["auth:users", "core:plugins"], reader=["core:plugins"])
    signed_in = await crm2.user("hirer")
    actor = await crm2.context.authenticator.from_headers(
        {k.lower(): v for k, v in signed_in.headers.items()}
    )

    async def lose() -> None:
        if lost == "demoted":
            await patch(crm2, admin, f"{USERS}/{signed_in.id}", {"roles": ["viewer"]})
        else:
            await patch(crm2, admin, f"{ROLES}/hirer", {"permissions": ["auth:users"]})

    async with crm2.context.session_factory() as creating:
        made = UserCreate(
            email="hired@example.com", password="a long enough secret", roles=["reader"]
        )
        await crm2.auth.create_user(creating, made, actor)
        losing = asyncio.create_task(lose())
        for _ in range(200):  # until the demotion waits on a lock, or has gone through
            if losing.done() or await lock_waiters(crm2):
                break
            await asyncio.sleep(0.05)
        demoted_first = losing.done()
        await creating.commit()
    await losing
    assert not demoted_first, "the demotion committed while the grant was still being made"


async def wait_for_lock_or(crm2: Crm2TestApp, task: asyncio.Task[None]) -> bool:
    """Whether ``task`` went through before waiting on a lock (or 10 s passed)."""
    for _ in range(200):
        if task.done() or await lock_waiters(crm2):
            break
        await asyncio.sleep(0.05)
    return task.done()


@pytest.mark.parametrize("lost", LOST)
async def test_a_demotion_racing_a_grant_of_roles_waits_for_the_grant_to_commit(
    crm2: Crm2TestApp, crm2_database: TestDatabase, admin: dict[str, str], lost: str
) -> None:
    """Changing a user's roles keeps the granter's row and roles as read until commit, as
    creating a user does: before, a demotion committed in between let the grant through."""
    if crm2_database.backend != "postgresql":
        pytest.skip("SQLite writes one at a time: a demotion cannot commit in between")
    await put_roles(crm2, admin, hirer=["auth:users", "core:plugins"], reader=["core:plugins"])
    target = await crm2.create_user("viewer", email="target@example.com")
    signed_in = await crm2.user("hirer")
    actor = await crm2.context.authenticator.from_headers(
        {k.lower(): v for k, v in signed_in.headers.items()}
    )

    async def lose() -> None:
        if lost == "demoted":
            await patch(crm2, admin, f"{USERS}/{signed_in.id}", {"roles": ["viewer"]})
        else:
            await patch(crm2, admin, f"{ROLES}/hirer", {"permissions": ["auth:users"]})

    async with crm2.context.session_factory() as granting:
        version = (await crm2.auth.get_user(granting, target)).version
        await granting.rollback()
        change = UserUpdate(roles=["reader", "viewer"])
        await crm2.auth.update_user(granting, target, etag_for(version), change, actor)
        losing = asyncio.create_task(lose())
        demoted_first = await wait_for_lock_or(crm2, losing)
        await granting.commit()
    await losing
    assert not demoted_first, "the demotion committed while the grant was still being made"


@pytest.mark.parametrize("lost", LOST)
async def test_a_demotion_racing_a_role_change_waits_for_the_change_to_commit(
    crm2: Crm2TestApp, crm2_database: TestDatabase, admin: dict[str, str], lost: str
) -> None:
    """A role given a permission by one who is losing it: their row and roles are kept
    as read until the change commits."""
    if crm2_database.backend != "postgresql":
        pytest.skip("SQLite writes one at a time: a demotion cannot commit in between")
    await put_roles(crm2, admin, roler=["auth:roles", "core:plugins"], reader=[])
    signed_in = await crm2.user("roler")
    actor = await crm2.context.authenticator.from_headers(
        {k.lower(): v for k, v in signed_in.headers.items()}
    )

    async def lose() -> None:
        if lost == "demoted":
            await patch(crm2, admin, f"{USERS}/{signed_in.id}", {"roles": ["viewer"]})
        else:
            await patch(crm2, admin, f"{ROLES}/roler", {"permissions": ["auth:roles"]})

    async with crm2.context.session_factory() as changing:
        version = (await crm2.auth.get_role(changing, "reader")).version
        await changing.rollback()
        change = RoleUpdate(permissions=["core:plugins"])
        await crm2.auth.update_role(changing, "reader", etag_for(version), change, actor)
        losing = asyncio.create_task(lose())
        demoted_first = await wait_for_lock_or(crm2, losing)
        await changing.commit()
    await losing
    assert not demoted_first, "the demotion committed while the role was still being changed"


async def test_two_admins_changing_each_other_at_once_do_not_deadlock(
    crm2: Crm2TestApp, crm2_database: TestDatabase, admin: dict[str, str]
) -> None:
    """Both users' rows are locked in one order: one change waits for the other (each
    holding its own row and waiting for the other's would deadlock)."""
    first, second = await crm2.user("admin"), await crm2.user("admin")
    actors = [
        await crm2.context.authenticator.from_headers(
            {k.lower(): v for k, v in who.headers.items()}
        )
        for who in (first, second)
    ]

    async def change(actor: Principal, target: uuid.UUID) -> None:
        async with crm2.context.session_factory() as session:
            version = (await crm2.auth.get_user(session, target)).version
            await session.rollback()
            renamed = UserUpdate(full_name="renamed")
            await crm2.auth.update_user(session, target, etag_for(version), renamed, actor)
            await asyncio.sleep(0.2)  # both hold what they locked first
            await session.commit()

    await asyncio.wait_for(
        asyncio.gather(change(actors[0], second.id), change(actors[1], first.id)), 30
    )
    for who in (first, second):
        shown = (await crm2.client.get(f"{USERS}/{who.id}", headers=admin)).json()
        assert (shown["full_name"], shown["roles"]) == ("renamed", ["admin"])
