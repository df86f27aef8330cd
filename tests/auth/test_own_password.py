"""One's own account: the password needs the current one (an admin resets another's
without it), and nobody deletes themselves, through their own API key neither."""

from __future__ import annotations

from typing import Any

import pytest

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, LOGIN, ME = "/api/v1/auth/users", "/api/v1/auth/login", "/api/v1/auth/me"
NEW = "a brand new passphrase"


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(f":{slug}"), response.json()


async def etag_of(crm2: Crm2TestApp, headers: dict[str, str], user_id: Any) -> str:
    etag: str = (await crm2.client.get(f"{USERS}/{user_id}", headers=headers)).headers["etag"]
    return etag


async def change_password(
    crm2: Crm2TestApp, headers: dict[str, str], user_id: Any, **body: Any
) -> Any:
    etag = await etag_of(crm2, headers, user_id)
    return await crm2.client.patch(
        f"{USERS}/{user_id}", json={"password": NEW, **body}, headers={**headers, "If-Match": etag}
    )


async def signs_in(crm2: Crm2TestApp, email: str, password: str) -> bool:
    response = await crm2.client.post(LOGIN, json={"email": email, "password": password})
    return response.status_code == 200


async def test_own_password_change_without_the_current_one_is_422(crm2: Crm2TestApp) -> None:
    """A stolen access token with auth:users took its owner's account for good."""
    admin = await crm2.user("admin")

    response = await change_password(crm2, admin.headers, admin.id)

    assert_problem(response, 422, "current-password-required")
    assert "current_password" in response.json()["detail"]
    assert await signs_in(crm2, admin.email, TEST_PASSWORD)
    assert not await signs_in(crm2, admin.email, NEW)


async def test_own_password_change_with_a_wrong_current_one_is_403(crm2: Crm2TestApp) -> None:
    admin = await crm2.user("admin")

    response = await change_password(crm2, admin.headers, admin.id, current_password="a guess")

    assert_problem(response, 403, "wrong-current-password")
    assert (await crm2.client.get(ME, headers=admin.headers)).status_code == 200  # unchanged
    assert await signs_in(crm2, admin.email, TEST_PASSWORD)


async def test_own_password_change_with_the_current_one_works(crm2: Crm2TestApp) -> None:
    admin = await crm2.user("admin")

    response = await change_password(crm2, admin.headers, admin.id, current_password=TEST_PASSWORD)

    assert response.status_code == 200, response.text
    assert await signs_in(crm2, admin.email, NEW)
    assert not await signs_in(crm2, admin.email, TEST_PASSWORD)


async def test_own_password_through_ones_own_api_key_needs_the_current_one(
    crm2: Crm2TestApp,
) -> None:
    """A key acts for the user who made it: it must not become their password either."""
    admin = await crm2.user("admin")
    made = await crm2.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "k", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}

    assert_problem(await change_password(crm2, key, admin.id), 422, "current-password-required")
    wrong = await change_password(crm2, key, admin.id, current_password="not it at all")
    assert_problem(wrong, 403, "wrong-current-password")
    assert await signs_in(crm2, admin.email, TEST_PASSWORD)


async def test_an_admin_resets_another_users_password_without_theirs(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    agent = await crm2.user("agent")

    response = await change_password(crm2, admin, agent.id)

    assert response.status_code == 200, response.text
    assert await signs_in(crm2, agent.email, NEW)


async def test_wrong_current_passwords_count_as_failed_sign_ins(
    crm2_app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the PATCH were a side door for guessing the password without the login's delays."""
    from datetime import UTC, datetime

    import crm2_core.auth.delays

    now = datetime.now(UTC)
    monkeypatch.setattr(crm2_core.auth.delays, "utcnow", lambda: now)  # the delay holds still
    crm2: Crm2TestApp = await crm2_app_factory(plugin_settings={"auth": {"login_free_failures": 2}})
    admin = await crm2.user("admin")
    for guess in ("first guess!", "second guess"):
        response = await change_password(crm2, admin.headers, admin.id, current_password=guess)
        assert_problem(response, 403, "wrong-current-password")

    right = await change_password(crm2, admin.headers, admin.id, current_password=TEST_PASSWORD)

    assert_problem(right, 429, "too-many-requests")
    assert int(right.headers["retry-after"]) >= 1
    # and the login from the same address waits as well: one streak, not two
    login = await crm2.client.post(LOGIN, json={"email": admin.email, "password": TEST_PASSWORD})
    assert_problem(login, 429, "too-many-requests")


async def test_a_password_changed_between_the_check_and_the_update_is_403(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current password is checked before the update's transaction: one changed in
    between (by the user elsewhere, or an admin's reset) is no longer what was checked.
    (An If-Match listing the next version too would not notice the change.)"""
    from crm2_core.auth.schemas import UserUpdate

    admin = await crm2.user("admin")
    etag = await etag_of(crm2, admin.headers, admin.id)
    passwords = crm2.auth.passwords
    verify = passwords.verify

    async def verify_then_reset(stored: str | None, password: str) -> bool:
        ok = await verify(stored, password)
        monkeypatch.setattr(passwords, "verify", verify)
        assert await crm2.auth.set_password_of(admin.email, "reset by an admin meanwhile")
        return ok

    async def set_password_of(email: str, password: str) -> bool:
        async with crm2.context.session_factory() as session:
            done = await crm2.auth.set_password(session, email, UserUpdate(password=password))
            await session.commit()
        return done

    monkeypatch.setattr(crm2.auth, "set_password_of", set_password_of, raising=False)
    monkeypatch.setattr(passwords, "verify", verify_then_reset)

    response = await crm2.client.patch(
        f"{USERS}/{admin.id}",
        json={"password": NEW, "current_password": TEST_PASSWORD},
        headers={**admin.headers, "If-Match": f'{etag}, "v{int(etag[2:-1]) + 1}"'},
    )

    assert_problem(response, 403, "wrong-current-password")
    assert await signs_in(crm2, admin.email, "reset by an admin meanwhile")
    assert not await signs_in(crm2, admin.email, NEW)


async def test_nobody_deletes_themselves_through_their_own_api_key(crm2: Crm2TestApp) -> None:
    """``DELETE /users/{own id}`` is 403 with a token; a key acts for its creator, so the
    same holds through it (it deleted the account, and so revoked itself)."""
    await crm2.login("admin")  # another admin: the last-admin rule is not what refuses
    admin = await crm2.user("admin")
    made = await crm2.client.post(
        "/api/v1/auth/api-keys",
        json={"name": "k", "role": "admin", "current_password": TEST_PASSWORD},
        headers=admin.headers,
    )
    key = {"X-API-Key": made.json()["key"]}

    response = await crm2.client.delete(f"{USERS}/{admin.id}", headers=key)

    assert response.status_code == 403, response.text
    assert (await crm2.client.get(ME, headers=admin.headers)).status_code == 200
