"""Login, refresh rotation, reuse detection, logout, and the single-use race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select, text, update

from crm2_core.auth.models import RefreshToken
from crm2_core.auth.repository import user_by_email
from crm2_core.auth.schemas import UserUpdate
from crm2_core.http.etag import etag_for
from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp, TestDatabase

PASSWORD = "correct horse battery staple"
LOGIN, REFRESH, LOGOUT, ME = (
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/me",
)


async def login(crm2: Crm2TestApp, email: str = "rotating@example.com") -> dict[str, Any]:
    await crm2.create_user("agent", email=email)
    response = await crm2.client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(crm2: Crm2TestApp, token: str) -> Any:
    return await crm2.client.post(REFRESH, json={"refresh_token": token})


def assert_token_pair(body: dict[str, Any]) -> None:
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    claims = jwt.decode(
        body["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], audience="crm2-api"
    )
    assert claims["typ"] == "access"
    assert claims["iss"] == "crm2"
    assert claims["exp"] - claims["iat"] == 900


async def test_login_returns_the_documented_shape(crm2: Crm2TestApp) -> None:
    assert_token_pair(await login(crm2))


async def test_login_access_token_opens_me(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    response = await crm2.client.get(
        ME, headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "rotating@example.com"


async def test_login_email_is_case_insensitive(crm2: Crm2TestApp) -> None:
    await crm2.create_user("agent", email="mixed@example.com")
    response = await crm2.client.post(
        LOGIN, json={"email": "  Mixed@Example.COM ", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text


async def test_wrong_password_is_401_problem(crm2: Crm2TestApp) -> None:
    await crm2.create_user("agent", email="wrong@example.com")
    response = await crm2.client.post(
        LOGIN, json={"email": "wrong@example.com", "password": "not the password"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_email_is_the_same_401_as_a_wrong_password(crm2: Crm2TestApp) -> None:
    await crm2.create_user("agent", email="known@example.com")
    wrong = await crm2.client.post(
        LOGIN, json={"email": "known@example.com", "password": "not the password"}
    )
    unknown = await crm2.client.post(
        LOGIN, json={"email": "nobody@example.com", "password": "not the password"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["type"] == wrong.json()["type"]
    assert unknown.json()["detail"] == wrong.json()["detail"]


async def test_refresh_returns_a_new_pair_of_the_same_shape(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    response = await refresh(crm2, pair["refresh_token"])
    assert response.status_code == 200, response.text
    assert_token_pair(response.json())
    assert response.json()["refresh_token"] != pair["refresh_token"]


async def test_refresh_rotates_so_the_old_token_fails(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    assert (await refresh(crm2, pair["refresh_token"])).status_code == 200
    again = await refresh(crm2, pair["refresh_token"])
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_reusing_a_spent_token_revokes_the_whole_family(crm2: Crm2TestApp) -> None:
    first = await login(crm2)
    second = (await refresh(crm2, first["refresh_token"])).json()
    third = (await refresh(crm2, second["refresh_token"])).json()
    reuse = await refresh(crm2, first["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["type"] == "urn:crm2:problem:refresh-token-reused"
    newest = await refresh(crm2, third["refresh_token"])
    assert newest.status_code == 401, newest.text


async def test_reuse_leaves_other_logins_of_the_same_user_alone(crm2: Crm2TestApp) -> None:
    first = await login(crm2)
    other = (
        await crm2.client.post(LOGIN, json={"email": "rotating@example.com", "password": PASSWORD})
    ).json()
    await refresh(crm2, first["refresh_token"])
    assert (await refresh(crm2, first["refresh_token"])).status_code == 401
    assert (await refresh(crm2, other["refresh_token"])).status_code == 200


async def test_logout_is_204_and_revokes_the_refresh_token(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    response = await crm2.client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    assert (await refresh(crm2, pair["refresh_token"])).status_code == 401


async def test_logout_revokes_tokens_rotated_from_the_same_login(crm2: Crm2TestApp) -> None:
    first = await login(crm2)
    second = (await refresh(crm2, first["refresh_token"])).json()
    await crm2.client.post(LOGOUT, json={"refresh_token": first["refresh_token"]})
    assert (await refresh(crm2, second["refresh_token"])).status_code == 401


async def test_logout_with_an_unknown_token_is_still_204(crm2: Crm2TestApp) -> None:
    response = await crm2.client.post(LOGOUT, json={"refresh_token": "x" * 43})
    assert response.status_code == 204


async def test_unknown_refresh_token_is_401(crm2: Crm2TestApp) -> None:
    response = await refresh(crm2, "y" * 43)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:crm2:problem:invalid-refresh-token"


async def test_access_token_is_not_a_refresh_token(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    assert (await refresh(crm2, pair["access_token"])).status_code == 401


async def test_refresh_token_is_stored_hashed(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    async with crm2.context.session_factory() as session:
        hashes = (await session.execute(select(RefreshToken.token_hash))).scalars().all()
    assert len(hashes) == 1
    assert pair["refresh_token"] not in hashes[0]


async def test_twenty_parallel_refreshes_with_one_token_let_exactly_one_through(
    crm2: Crm2TestApp,
) -> None:
    pair = await login(crm2)
    responses = await asyncio.gather(*(refresh(crm2, pair["refresh_token"]) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 19, statuses


async def test_rotation_does_not_extend_the_login_lifetime(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    await refresh(crm2, pair["refresh_token"])
    async with crm2.context.session_factory() as session:
        ends = (await session.execute(select(RefreshToken.expires_at))).scalars().all()
    assert len(ends) == 2
    assert ends[0] == ends[1]


async def test_expired_refresh_token_is_401(crm2: Crm2TestApp) -> None:
    pair = await login(crm2)
    async with crm2.context.session_factory() as session:
        await session.execute(
            update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    response = await refresh(crm2, pair["refresh_token"])
    assert response.status_code == 401
    assert response.json()["type"] == "urn:crm2:problem:invalid-refresh-token"


async def test_a_refresh_racing_a_password_change_gives_no_lasting_session(
    crm2: Crm2TestApp, crm2_database: TestDatabase
) -> None:
    """The rotation commits while the password change waits: the change still ends the
    pair the rotation made (else a thief refreshing at that moment outlived the reset)."""
    pair = await login(crm2, "race@example.com")
    service = crm2.auth
    async with crm2.context.session_factory() as session:
        user = await user_by_email(session, "race@example.com")
        assert user is not None
    user_id, etag = user.id, etag_for(user.version)

    async def change_password() -> None:
        async with crm2.context.session_factory() as changing:
            data = UserUpdate(password="a brand new secret")
            await service.update_user(changing, user_id, etag, data)
            await changing.commit()

    async with crm2.context.session_factory() as rotating:
        rotated = await service.refresh(rotating, pair["refresh_token"])
        change = asyncio.create_task(change_password())
        if crm2_database.backend == "postgresql":  # let the change reach the rotation's locks
            for _ in range(100):
                async with crm2.context.session_factory() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE "
                            "datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                if waiting or change.done():
                    break
                await asyncio.sleep(0.05)
        else:
            await asyncio.sleep(0.2)
        assert not change.done()
        await rotating.commit()
    await change

    response = await refresh(crm2, rotated.refresh_token)
    assert response.status_code == 401, response.text


async def test_login_takes_the_address_in_the_form_it_was_created_with(
    crm2: Crm2TestApp,
) -> None:
    """An account is stored normalised (NFC, the domain in Unicode): signing in with the
    address exactly as it was given (a decomposed é, a punycode domain) finds it."""
    decomposed, punycode = "Jose\u0301@example.com", "anna@xn--bcher-kva.ch"
    for email in (decomposed, punycode):
        await crm2.create_user("agent", email=email)
        response = await crm2.client.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, (email, response.text)
    composed = await crm2.client.post(
        LOGIN, json={"email": "jos\u00e9@example.com", "password": PASSWORD}
    )
    assert composed.status_code == 200, composed.text
    taken = await crm2.client.post(
        "/api/v1/auth/users",
        json={"email": "JOS\u00c9@example.com", "password": PASSWORD},
        headers=await crm2.login("admin"),
    )
    assert taken.status_code == 409, taken.text


async def test_logout_declares_no_401_it_never_sends(crm2: Crm2TestApp) -> None:
    """Signing out with any token, unknown, spent or revoked, is 204: nothing to refuse."""
    pair = await login(crm2)
    spent = pair["refresh_token"]
    assert (await refresh(crm2, spent)).status_code == 200
    for token in (spent, spent, "z" * 43):
        response = await crm2.client.post(LOGOUT, json={"refresh_token": token})
        assert response.status_code == 204, response.text
    document = (await crm2.client.get("/openapi.json")).json()
    assert "401" not in document["paths"][LOGOUT]["post"]["responses"]


async def test_a_refresh_losing_the_race_to_a_credentials_change_says_so(
    crm2: Crm2TestApp, crm2_database: TestDatabase, monkeypatch: Any
) -> None:
    """The token is read, then a password change commits (revoking it), then the
    rotation tries to spend it: the session ended, nobody reused the token."""
    from crm2_core.auth import repository

    pair = await login(crm2, "lost@example.com")
    async with crm2.context.session_factory() as session:
        user = await user_by_email(session, "lost@example.com")
        assert user is not None
    user_id, etag = user.id, etag_for(user.version)
    data = UserUpdate(password="a brand new secret")
    real = repository.user_for_share

    async def change_first(session: Any, wanted: Any) -> Any:
        if crm2_database.backend == "postgresql":  # another transaction, committed
            async with crm2.context.session_factory() as changing:
                await crm2.auth.update_user(changing, user_id, etag, data)
                await changing.commit()
        else:  # SQLite runs one writer at a time: the same change, in this transaction
            await crm2.auth.update_user(session, user_id, etag, data)
        return await real(session, wanted)

    monkeypatch.setattr(repository, "user_for_share", change_first)
    response = await refresh(crm2, pair["refresh_token"])
    monkeypatch.setattr(repository, "user_for_share", real)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm2:problem:credentials-changed"
