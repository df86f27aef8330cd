"""Resetting a password: another administrator's needs the acting admin's own current
password ("sudo mode"); a reset (or one's own change) may end the user's API keys; a
wrong current password is a refused sign-in (``auth.login.failed``), kept although the
request is refused.

Before: a stolen admin access token reset another admin's password without any
password, signed in as that admin and, through that account, reset the first admin's
too; API keys outlived every password change; a wrong current password published
nothing (the event rolled back with the refused request).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from crm2_core.events.models import EventRecord
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, LOGIN, KEYS = "/api/v1/auth/users", "/api/v1/auth/login", "/api/v1/auth/api-keys"
STOLEN = "the attacker's passphrase"


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(f":{slug}"), response.json()


async def patch_user(crm2: Crm2TestApp, headers: dict[str, str], user_id: Any, body: Any) -> Any:
    etag = (await crm2.client.get(f"{USERS}/{user_id}", headers=headers)).headers["etag"]
    return await crm2.client.patch(
        f"{USERS}/{user_id}", json=body, headers={**headers, "If-Match": etag}
    )


async def signs_in(crm2: Crm2TestApp, email: str, password: str) -> bool:
    response = await crm2.client.post(LOGIN, json={"email": email, "password": password})
    return response.status_code == 200


async def make_key(
    crm2: Crm2TestApp, headers: dict[str, str], role: str, password: str = TEST_PASSWORD
) -> dict[str, str]:
    body = {"name": "k", "role": role, "current_password": password}
    made = await crm2.client.post(KEYS, json=body, headers=headers)
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


async def works(crm2: Crm2TestApp, headers: dict[str, str]) -> bool:
    response = await crm2.client.get(f"{USERS}?limit=1", headers=headers)
    return response.status_code == 200


async def events(crm2: Crm2TestApp, type_: str) -> list[EventRecord]:
    async with crm2.context.session_factory() as session:
        rows = await session.execute(select(EventRecord).where(col(EventRecord.type) == type_))
        return list(rows.scalars())


async def test_a_stolen_admin_token_cannot_reset_another_admins_password(
    crm2: Crm2TestApp,
) -> None:
    """The attacker holds one admin's access token and nothing else."""
    stolen = await crm2.user("admin")
    other = await crm2.user("admin")

    bare = await patch_user(crm2, stolen.headers, other.id, {"password": STOLEN})
    assert_problem(bare, 422, "current-password-required")
    assert "current_password" in bare.json()["detail"]
    guessed = {"password": STOLEN, "current_password": "a guess at it"}
    assert_problem(
        await patch_user(crm2, stolen.headers, other.id, guessed), 403, "wrong-current-password"
    )

    assert not await signs_in(crm2, other.email, STOLEN)
    assert await signs_in(crm2, other.email, TEST_PASSWORD)


async def test_a_user_with_auth_users_counts_as_an_administrator(crm2: Crm2TestApp) -> None:
    admin = await crm2.user("admin")
    async with crm2.context.session_factory() as session:
        from crm2_core.auth import repository as repo

        await repo.set_role_permissions(session, "manager", ["auth:users"])
        await session.commit()
    crm2.auth.roles.invalidate()
    keeper = await crm2.user("manager")

    response = await patch_user(crm2, admin.headers, keeper.id, {"password": STOLEN})

    assert_problem(response, 422, "current-password-required")
    assert await signs_in(crm2, keeper.email, TEST_PASSWORD)


async def test_with_ones_own_password_another_admins_reset_works(crm2: Crm2TestApp) -> None:
    acting = await crm2.user("admin")
    other = await crm2.user("admin")

    body = {"password": STOLEN, "current_password": TEST_PASSWORD}
    response = await patch_user(crm2, acting.headers, other.id, body)

    assert response.status_code == 200, response.text
    assert await signs_in(crm2, other.email, STOLEN)


async def test_through_an_api_key_the_creators_password_confirms(crm2: Crm2TestApp) -> None:
    acting = await crm2.user("admin")
    other = await crm2.user("admin")
    key = await make_key(crm2, acting.headers, "admin")

    assert_problem(
        await patch_user(crm2, key, other.id, {"password": STOLEN}),
        422,
        "current-password-required",
    )
    body = {"password": STOLEN, "current_password": TEST_PASSWORD}
    assert (await patch_user(crm2, key, other.id, body)).status_code == 200
    assert await signs_in(crm2, other.email, STOLEN)


async def test_a_plain_users_reset_needs_no_password(crm2: Crm2TestApp) -> None:
    admin = await crm2.user("admin")
    agent = await crm2.user("agent")

    response = await patch_user(crm2, admin.headers, agent.id, {"password": STOLEN})

    assert response.status_code == 200, response.text
    assert await signs_in(crm2, agent.email, STOLEN)


async def test_a_reset_keeps_the_users_api_keys_unless_asked_to_revoke_them(
    crm2: Crm2TestApp,
) -> None:
    admin = await crm2.user("admin")
    victim = await crm2.user("admin")
    first = await make_key(crm2, victim.headers, "admin")
    made_with = await make_key(crm2, first, "admin")
    reset = {"password": STOLEN, "current_password": TEST_PASSWORD}
    assert (await patch_user(crm2, admin.headers, victim.id, reset)).status_code == 200
    assert await works(crm2, first) and await works(crm2, made_with)  # the default: kept
    pair = await crm2.client.post(LOGIN, json={"email": victim.email, "password": STOLEN})
    second = await make_key(
        crm2, {"Authorization": f"Bearer {pair.json()['access_token']}"}, "admin", STOLEN
    )
    others = await make_key(crm2, admin.headers, "admin")

    again = {**reset, "password": "yet another passphrase", "revoke_api_keys": True}
    response = await patch_user(crm2, admin.headers, victim.id, again)

    assert response.status_code == 200, response.text
    for key in (first, made_with, second):
        assert not await works(crm2, key)
    assert await works(crm2, others)  # the acting admin's own keys are not theirs
    [revoked] = await events(crm2, "auth.api_key.revoked")
    assert revoked.data["reason"] == "creator-keys-revoked"
    assert len(revoked.data["key_ids"]) == 3


async def test_ones_own_change_may_revoke_ones_own_keys(crm2: Crm2TestApp) -> None:
    admin = await crm2.user("admin")
    key = await make_key(crm2, admin.headers, "admin")
    body = {"password": STOLEN, "current_password": TEST_PASSWORD, "revoke_api_keys": True}

    response = await patch_user(crm2, admin.headers, admin.id, body)

    assert response.status_code == 200, response.text
    assert not await works(crm2, key)


async def test_a_refused_revocation_revokes_nothing(crm2: Crm2TestApp) -> None:
    """``revoke_api_keys`` goes with the PATCH: a refused one (no current password) keeps them."""
    acting = await crm2.user("admin")
    other = await crm2.user("admin")
    key = await make_key(crm2, other.headers, "admin")

    body = {"password": STOLEN, "revoke_api_keys": True}
    assert_problem(
        await patch_user(crm2, acting.headers, other.id, body), 422, "current-password-required"
    )

    assert await works(crm2, key)


async def test_a_wrong_current_password_publishes_login_failed(crm2: Crm2TestApp) -> None:
    acting = await crm2.user("admin")
    other = await crm2.user("admin")
    wrong = {"password": STOLEN, "current_password": "not my password"}

    assert_problem(
        await patch_user(crm2, acting.headers, acting.id, wrong), 403, "wrong-current-password"
    )
    assert_problem(
        await patch_user(crm2, acting.headers, other.id, wrong), 403, "wrong-current-password"
    )

    failed = await events(crm2, "auth.login.failed")
    assert [(e.subject, e.data["reason"], e.data["failures"]) for e in failed] == [
        (str(acting.id), "wrong_password", 1),
        (str(acting.id), "wrong_password", 2),
    ]
    assert all(e.data["address"] == "127.0.0.1" for e in failed)


async def test_a_stolen_token_cannot_demote_reset_and_promote_another_admin(
    crm2: Crm2TestApp,
) -> None:
    """The reset alone asked for a password: demoting the admin first made it a plain one."""
    stolen = await crm2.user("admin")
    other = await crm2.user("admin")
    assert (
        await patch_user(crm2, stolen.headers, other.id, {"roles": ["viewer"]})
    ).status_code == 200
    assert (
        await patch_user(crm2, stolen.headers, other.id, {"password": STOLEN})
    ).status_code == 200

    back = await patch_user(crm2, stolen.headers, other.id, {"roles": ["admin"]})

    assert_problem(back, 422, "current-password-required")
    got = await crm2.client.get(f"{USERS}/{other.id}", headers=stolen.headers)
    assert got.json()["roles"] == ["viewer"]
    confirmed = {"roles": ["admin"], "current_password": TEST_PASSWORD}
    assert (await patch_user(crm2, stolen.headers, other.id, confirmed)).status_code == 200


async def test_a_stolen_token_cannot_make_a_new_admin(crm2: Crm2TestApp) -> None:
    stolen = await crm2.user("admin")
    body = {"email": "sleeper@example.com", "password": STOLEN, "roles": ["admin"]}

    assert_problem(
        await crm2.client.post(USERS, json=body, headers=stolen.headers),
        422,
        "current-password-required",
    )
    wrong = {**body, "current_password": "a guess at it"}
    assert_problem(
        await crm2.client.post(USERS, json=wrong, headers=stolen.headers),
        403,
        "wrong-current-password",
    )
    assert not await signs_in(crm2, "sleeper@example.com", STOLEN)

    plain = {**body, "email": "plain@example.com", "roles": ["agent"]}
    assert (await crm2.client.post(USERS, json=plain, headers=stolen.headers)).status_code == 201
    confirmed = {**body, "current_password": TEST_PASSWORD}
    assert (
        await crm2.client.post(USERS, json=confirmed, headers=stolen.headers)
    ).status_code == 201


async def test_a_stolen_token_cannot_give_a_role_auth_users(crm2: Crm2TestApp) -> None:
    """Else: reset a manager's password (a plain one), then make managers administrators."""
    stolen = await crm2.user("admin")
    url = "/api/v1/auth/roles/manager"
    got = await crm2.client.get(url, headers=stolen.headers)
    etag, permissions = got.headers["etag"], got.json()["permissions"]
    headers = {**stolen.headers, "If-Match": etag}
    body = {"permissions": [*permissions, "auth:users"]}

    assert_problem(
        await crm2.client.patch(url, json=body, headers=headers), 422, "current-password-required"
    )
    assert (
        "auth:users"
        not in (await crm2.client.get(url, headers=stolen.headers)).json()["permissions"]
    )
    confirmed = {**body, "current_password": TEST_PASSWORD}
    assert (await crm2.client.patch(url, json=confirmed, headers=headers)).status_code == 200
