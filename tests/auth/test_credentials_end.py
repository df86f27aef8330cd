"""Credentials die with the account: demoted, deactivated or deleted users' tokens and keys."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, ROLES, KEYS, ME, PLUGINS = (
    "/api/v1/auth/users",
    "/api/v1/auth/roles",
    "/api/v1/auth/api-keys",
    "/api/v1/auth/me",
    "/api/v1/plugins",
)


@pytest.fixture
async def admin(crm2: Crm2TestApp) -> dict[str, str]:
    return await crm2.login("admin")


async def user_id_of(crm2: Crm2TestApp, headers: dict[str, str]) -> str:
    response = await crm2.client.get(ME, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def patch_user(
    crm2: Crm2TestApp, admin: dict[str, str], user_id: str, body: dict[str, Any]
) -> None:
    url = f"{USERS}/{user_id}"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    response = await crm2.client.patch(url, json=body, headers={**admin, "If-Match": etag})
    assert response.status_code == 200, response.text


async def make_key(
    crm2: Crm2TestApp, headers: dict[str, str], role: str = "admin"
) -> dict[str, str]:
    response = await crm2.client.post(
        KEYS, json={"name": "k", "role": role, "current_password": TEST_PASSWORD}, headers=headers
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# tables of the scheduler, the event log and the login-failure sweep, which run beside the
# requests on the same engine; an authenticated GET never touches them
BACKGROUND_TABLES = (
    "core_job_run",
    "core_event",
    "core_applied_event",
    "core_dead_letter",
    "core_handler_cursor",
    "auth_login_failure",  # the hourly sweep of old login failures
    "pg_try_advisory_xact_lock",  # the relay's turn, taken before it reads core_event
)


@contextmanager
def counting_queries(crm2: Crm2TestApp) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):  # SQLite's own transaction control
            return
        # the app's scheduler and relay run beside the requests on the same engine:
        # their bookkeeping is not the request path's
        if any(table in statement for table in BACKGROUND_TABLES):
            return
        statements.append(statement)

    engine = crm2.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- access tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"roles": ["viewer"]},
        {"is_active": False},
        # another admin's password: the acting admin confirms with their own
        {"password": "another long one", "current_password": TEST_PASSWORD},
    ],
)
async def test_old_access_token_stops_working_at_once(
    crm2: Crm2TestApp, admin: dict[str, str], change: dict[str, Any]
) -> None:
    demoted = await crm2.login("admin")
    assert (await crm2.client.get(USERS, headers=demoted)).status_code == 200
    await patch_user(crm2, admin, await user_id_of(crm2, demoted), change)
    assert_401(await crm2.client.get(USERS, headers=demoted))
    assert_401(await crm2.client.get(ME, headers=demoted))


async def test_deleted_users_access_token_stops_working(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    gone = await crm2.login("admin")
    user_id = await user_id_of(crm2, gone)
    assert (await crm2.client.delete(f"{USERS}/{user_id}", headers=admin)).status_code == 204
    assert_401(await crm2.client.get(USERS, headers=gone))


async def test_renaming_a_user_keeps_their_token(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    renamed = await crm2.login("agent")
    await patch_user(crm2, admin, await user_id_of(crm2, renamed), {"full_name": "New Name"})
    assert (await crm2.client.get(ME, headers=renamed)).status_code == 200


async def test_signing_in_again_after_a_demotion_gives_the_new_rights(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    email = f"demoted-{uuid.uuid4().hex[:6]}@example.com"
    demoted = await crm2.login("admin", email=email)
    await patch_user(crm2, admin, await user_id_of(crm2, demoted), {"roles": ["viewer"]})
    body = {"email": email, "password": "correct horse battery staple"}
    fresh = (await crm2.client.post("/api/v1/auth/login", json=body)).json()["access_token"]
    headers = {"Authorization": f"Bearer {fresh}"}
    assert (await crm2.client.get(ME, headers=headers)).json()["roles"] == ["viewer"]
    assert (await crm2.client.get(USERS, headers=headers)).status_code == 403


async def test_a_role_losing_a_permission_takes_it_from_tokens_at_once(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    body = {"name": "watcher", "permissions": ["core:plugins"]}
    assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    watcher = await crm2.login("watcher")
    assert (await crm2.client.get(PLUGINS, headers=watcher)).status_code == 200
    etag = (await crm2.client.get(f"{ROLES}/watcher", headers=admin)).headers["etag"]
    response = await crm2.client.patch(
        f"{ROLES}/watcher", json={"permissions": []}, headers={**admin, "If-Match": etag}
    )
    assert response.status_code == 200, response.text
    assert (await crm2.client.get(PLUGINS, headers=watcher)).status_code == 403


async def test_a_role_change_during_a_role_cache_reload_is_not_kept_past_it(
    crm2: Crm2TestApp, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm2_core.auth.schemas import RoleUpdate

    body = {"name": "watcher", "permissions": ["core:plugins"]}
    assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    watcher = await crm2.login("watcher")
    cache = crm2.context.authenticator.roles
    read = cache._session_factory
    done_reading, go_on = asyncio.Event(), asyncio.Event()

    @asynccontextmanager
    async def read_then_pause() -> AsyncIterator[Any]:  # a busy process, after the read
        async with read() as session:
            yield session
        done_reading.set()
        await go_on.wait()

    monkeypatch.setattr(cache, "_session_factory", read_then_pause)
    cache.invalidate()  # as when CRM2_AUTH_ROLE_CACHE_SECONDS runs out
    reload = asyncio.create_task(cache.permissions(["watcher"]))
    await asyncio.wait_for(done_reading.wait(), 10)
    monkeypatch.setattr(cache, "_session_factory", read)
    async with crm2.context.session_factory() as session:  # PATCH /roles/watcher's work
        role = await crm2.auth.get_role(session, "watcher")
        await crm2.auth.update_role(
            session, "watcher", f'"v{role.version}"', RoleUpdate(permissions=[])
        )
        await session.commit()  # invalidates the cache, during the reload
    go_on.set()
    await reload

    assert (await crm2.client.get(PLUGINS, headers=watcher)).status_code == 403


# -- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"roles": ["viewer"]}, {"is_active": False}, None])
async def test_keys_die_when_their_creator_loses_the_right(
    crm2: Crm2TestApp, admin: dict[str, str], change: dict[str, Any] | None
) -> None:
    creator = await crm2.login("admin")
    key = await make_key(crm2, creator)
    child = await make_key(crm2, key, role="viewer")  # a key made by that key
    assert (await crm2.client.get(USERS, headers=key)).status_code == 200
    creator_id = await user_id_of(crm2, creator)
    if change is None:
        assert (await crm2.client.delete(f"{USERS}/{creator_id}", headers=admin)).status_code == 204
    else:
        await patch_user(crm2, admin, creator_id, change)
    assert_401(await crm2.client.get(USERS, headers=key))
    assert_401(await crm2.client.get(ME, headers=child))
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert listed and all(k["revoked_at"] is not None for k in listed)


async def test_keys_die_when_the_creators_role_loses_api_keys(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    body = {"name": "integrator", "permissions": ["auth:api_keys", "core:plugins"]}
    assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    integrator = await crm2.login("integrator")
    key = await make_key(crm2, integrator, role="integrator")
    assert (await crm2.client.get(PLUGINS, headers=key)).status_code == 200
    etag = (await crm2.client.get(f"{ROLES}/integrator", headers=admin)).headers["etag"]
    response = await crm2.client.patch(
        f"{ROLES}/integrator",
        json={"permissions": ["core:plugins"]},
        headers={**admin, "If-Match": etag},
    )
    assert response.status_code == 200, response.text
    assert_401(await crm2.client.get(PLUGINS, headers=key))


@pytest.mark.parametrize("credential", ["access-token", "api-key"])
async def test_a_key_made_on_authority_lost_meanwhile_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str], credential: str
) -> None:
    """The request authenticated before the creator's demotion committed, and writes after."""
    from crm2_core.auth.schemas import ApiKeyCreate
    from crm2_core.errors import Unauthorized

    body = {"name": "keyer", "permissions": ["auth:api_keys", "core:plugins"]}
    assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    keyer = await crm2.login("keyer")
    headers = keyer if credential == "access-token" else await make_key(crm2, keyer, "keyer")
    actor = await crm2.context.authenticator.from_headers(
        {k.lower(): v for k, v in headers.items()}
    )
    await patch_user(crm2, admin, await user_id_of(crm2, keyer), {"roles": ["viewer"]})

    async with crm2.context.session_factory() as session:
        with pytest.raises(Unauthorized):
            await crm2.auth.create_api_key(
                session,
                ApiKeyCreate(name="late", role="keyer", current_password=TEST_PASSWORD),
                actor,
            )
        await session.rollback()
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["name"] for k in listed if k["revoked_at"] is None] == []


async def patch_role(
    crm2: Crm2TestApp, admin: dict[str, str], name: str, permissions: list[str]
) -> Any:
    url = f"{ROLES}/{name}"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    body = {"permissions": permissions}
    return await crm2.client.patch(url, json=body, headers={**admin, "If-Match": etag})


async def keyer_and_reader(crm2: Crm2TestApp, admin: dict[str, str]) -> dict[str, str]:
    """Signs in a user whose role "keyer" makes keys and reads plugins; the role "reader"
    (``core:plugins``) is what they give their keys."""
    for name, permissions in (
        ("keyer", ["auth:api_keys", "core:plugins"]),
        ("reader", ["core:plugins"]),
    ):
        body = {"name": name, "permissions": permissions}
        assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    return await crm2.login("keyer")


async def test_a_key_made_on_a_permission_the_creators_role_lost_meanwhile_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """The request authenticated (its permissions from the role cache) before the role
    lost the permission, and writes after: the stored grants decide."""
    from crm2_core.auth.schemas import ApiKeyCreate
    from crm2_core.errors import Forbidden

    keyer = await keyer_and_reader(crm2, admin)
    actor = await crm2.context.authenticator.from_headers({k.lower(): v for k, v in keyer.items()})
    assert "core:plugins" in actor.permissions
    assert (await patch_role(crm2, admin, "keyer", ["auth:api_keys"])).status_code == 200

    async with crm2.context.session_factory() as session:
        with pytest.raises(Forbidden):
            await crm2.auth.create_api_key(
                session,
                ApiKeyCreate(name="late", role="reader", current_password=TEST_PASSWORD),
                actor,
            )
        await session.rollback()
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["name"] for k in listed if k["revoked_at"] is None] == []


async def test_a_role_losing_a_permission_waits_for_a_key_being_made_on_it(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """The key is written first: the role's change waits for it, then revokes it."""
    from crm2_core.auth.schemas import ApiKeyCreate

    if crm2.context.settings.is_sqlite:
        pytest.skip("PostgreSQL's row locks (SQLite writes one transaction at a time)")
    keyer = await keyer_and_reader(crm2, admin)
    actor = await crm2.context.authenticator.from_headers({k.lower(): v for k, v in keyer.items()})
    async with crm2.context.session_factory() as session:
        await crm2.auth.create_api_key(
            session,
            ApiKeyCreate(name="racing", role="reader", current_password=TEST_PASSWORD),
            actor,
        )
        change = asyncio.create_task(patch_role(crm2, admin, "keyer", ["auth:api_keys"]))
        await asyncio.sleep(0.5)
        assert not change.done()  # it waits for the key's transaction
        await session.commit()
    assert (await asyncio.wait_for(change, 10)).status_code == 200
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["name"] for k in listed if k["revoked_at"] is None] == []


async def test_revoking_a_key_revokes_the_keys_it_made(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    parent = await make_key(crm2, admin)
    child = await make_key(crm2, parent, role="viewer")
    parent_id = next(
        k["id"]
        for k in (await crm2.client.get(KEYS, headers=admin)).json()["items"]
        if k["role"] == "admin"
    )
    assert (await crm2.client.delete(f"{KEYS}/{parent_id}", headers=admin)).status_code == 204
    assert_401(await crm2.client.get(ME, headers=child))


# -- the hot path ---------------------------------------------------------------------------


async def test_authenticated_get_runs_no_query_once_warm(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    assert (await crm2.client.get(PLUGINS, headers=admin)).status_code == 200  # warms the caches
    with counting_queries(crm2) as statements:
        for _ in range(20):
            assert (await crm2.client.get(PLUGINS, headers=admin)).status_code == 200
    assert statements == []
    crm2.context.auth.credentials.clear()
    with counting_queries(crm2) as statements:
        assert (await crm2.client.get(PLUGINS, headers=admin)).status_code == 200
    assert len(statements) == 1, statements  # the one credentials read


async def test_me_reads_its_one_query_without_an_orm_session(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """``/auth/me`` runs on a Core connection (``http.deps.read_connection``): a session's
    construction, transaction and commit would cost as much CPU as the query."""
    assert (await crm2.client.get(ME, headers=admin)).status_code == 200  # warms the caches
    transactions: list[object] = []

    def record(_session: Any, transaction: Any) -> None:
        transactions.append(transaction)

    event.listen(crm2.context.session_class, "after_transaction_create", record)
    try:
        with counting_queries(crm2) as statements:
            response = await crm2.client.get(ME, headers=admin)
    finally:
        event.remove(crm2.context.session_class, "after_transaction_create", record)
    assert response.status_code == 200
    assert response.json()["roles"] == ["admin"]
    # one query, sent by asyncpg itself on PostgreSQL (``DirectSelect``)
    direct = crm2.context.engine.dialect.driver == "asyncpg"
    assert len(statements) == (0 if direct else 1), statements
    assert transactions == []


async def test_another_process_refuses_the_token_as_soon_as_the_event_arrives(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str]
) -> None:
    """Two serving processes on one database and one Redis: the change is made on one,
    the old token is refused on the other within the event's delivery, not the cache TTL."""
    url, prefix = crm2_redis_url
    # a cache TTL far beyond the test: only the event can make the other process forget
    slow = {"auth": {"credentials_cache_seconds": 3600}}
    first = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    second = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    admin = await first.login("admin")
    demoted = await first.login("admin")
    assert (await second.client.get(USERS, headers=demoted)).status_code == 200  # cached there
    await patch_user(first, admin, await user_id_of(first, demoted), {"roles": ["viewer"]})
    started = time.monotonic()
    while (await second.client.get(USERS, headers=demoted)).status_code == 200:
        assert time.monotonic() - started < 5, "the other process never heard of the change"
        await asyncio.sleep(0.02)
    assert_401(await second.client.get(USERS, headers=demoted))


async def test_api_key_get_runs_no_query_once_warm(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    key = await make_key(crm2, admin)
    assert (await crm2.client.get(PLUGINS, headers=key)).status_code == 200  # warms the caches
    with counting_queries(crm2) as statements:
        for _ in range(20):
            assert (await crm2.client.get(PLUGINS, headers=key)).status_code == 200
    assert statements == []
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert listed[0]["last_used_at"] is not None  # still recorded (once a minute at most)
    crm2.context.authenticator.api_keys.clear()
    with counting_queries(crm2) as statements:
        assert (await crm2.client.get(PLUGINS, headers=key)).status_code == 200
    assert len(statements) == 1, statements  # the one key read


async def test_a_key_created_after_a_miss_works_at_once(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """Unknown prefixes are not remembered: a new key needs no cache expiry."""
    assert_401(await crm2.client.get(PLUGINS, headers={"Authorization": "Bearer crm2_ab01_x"}))
    key = await make_key(crm2, admin)
    assert (await crm2.client.get(PLUGINS, headers=key)).status_code == 200


@pytest.mark.parametrize("how", ["revoked", "creator-demoted"])
async def test_another_process_refuses_the_key_as_soon_as_the_event_arrives(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str], how: str
) -> None:
    """The key row is cached for an hour in the other process: only the event can tell it."""
    url, prefix = crm2_redis_url
    slow = {"auth": {"credentials_cache_seconds": 3600}}
    first = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    second = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    admin = await first.login("admin")
    creator = await first.login("admin")
    key = await make_key(first, creator)
    assert (await second.client.get(USERS, headers=key)).status_code == 200  # cached there
    loads = second.context.authenticator.api_keys.loads
    assert (await second.client.get(USERS, headers=key)).status_code == 200
    assert second.context.authenticator.api_keys.loads == loads  # served from the cache
    if how == "revoked":
        key_id = (await first.client.get(KEYS, headers=admin)).json()["items"][0]["id"]
        assert (await first.client.delete(f"{KEYS}/{key_id}", headers=admin)).status_code == 204
    else:
        await patch_user(first, admin, await user_id_of(first, creator), {"roles": ["viewer"]})
    assert_401(await first.client.get(USERS, headers=key))  # at once where it was made
    started = time.monotonic()
    while (await second.client.get(USERS, headers=key)).status_code == 200:
        assert time.monotonic() - started < 5, "the other process never heard of the revocation"
        await asyncio.sleep(0.02)
    assert_401(await second.client.get(USERS, headers=key))


async def granter(crm2: Crm2TestApp, admin: dict[str, str]) -> dict[str, str]:
    """Signs in a user whose role "granter" manages users and reads plugins; the role
    "reader" (``core:plugins``) is what they give."""
    for name, permissions in (
        ("granter", ["auth:users", "core:plugins"]),
        ("reader", ["core:plugins"]),
    ):
        body = {"name": name, "permissions": permissions}
        assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    return await crm2.login("granter")


@pytest.mark.parametrize("lost", ["demoted", "role-changed"])
async def test_a_role_given_on_authority_lost_meanwhile_is_refused(
    crm2: Crm2TestApp, admin: dict[str, str], lost: str
) -> None:
    """The request authenticated before the granter was demoted (or their role lost the
    permission), and writes after: a user made or promoted then keeps the role for good,
    so the granter's standing and stored grants decide, as for a key."""
    from crm2_core.auth.schemas import UserCreate, UserUpdate
    from crm2_core.errors import Crm2Error
    from crm2_core.http.etag import etag_for

    headers = await granter(crm2, admin)
    actor = await crm2.context.authenticator.from_headers(
        {k.lower(): v for k, v in headers.items()}
    )
    plain = await crm2.create_user("viewer", email="plain@example.com")
    if lost == "demoted":
        await patch_user(crm2, admin, await user_id_of(crm2, headers), {"roles": ["viewer"]})
    else:
        assert (await patch_role(crm2, admin, "granter", ["auth:users"])).status_code == 200

    async with crm2.context.session_factory() as session:
        data = UserCreate(email="late@example.com", password="p" * 12, roles=["reader"])
        with pytest.raises(Crm2Error) as made:
            await crm2.auth.create_user(session, data, actor)
        assert made.value.status in (401, 403)
        await session.rollback()
    async with crm2.context.session_factory() as session:
        version = (await crm2.auth.get_user(session, plain)).version
    # a fresh session, as a request's: update_user reads in sessions of its own first
    async with crm2.context.session_factory() as session:
        promote = UserUpdate(roles=["viewer", "reader"])
        with pytest.raises(Crm2Error) as changed:
            await crm2.auth.update_user(session, plain, etag_for(version), promote, actor)
        assert changed.value.status in (401, 403)
        await session.rollback()
    listed = (await crm2.client.get(USERS, headers=admin)).json()["items"]
    assert "late@example.com" not in [u["email"] for u in listed]
    assert [u["roles"] for u in listed if u["email"] == "plain@example.com"] == [["viewer"]]


@pytest.mark.parametrize("how", ["permission removed", "role deleted"])
async def test_a_role_change_reaches_another_process_as_soon_as_the_event_arrives(
    crm2_app_factory: Any, crm2_redis_url: tuple[str, str], how: str
) -> None:
    """The role cache of the other process is good for 5 minutes here: only the event can
    take the removed right from the tokens it serves; where the change was made, at once."""
    url, prefix = crm2_redis_url
    slow = {"auth": {"role_cache_seconds": 300, "credentials_cache_seconds": 3600}}
    first = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    second = await crm2_app_factory(redis_url=url, redis_prefix=prefix, plugin_settings=slow)
    admin = await first.login("admin")
    body = {"name": "watcher", "permissions": ["core:plugins"]}
    assert (await first.client.post(ROLES, json=body, headers=admin)).status_code == 201
    watcher = await first.login("watcher")
    for app in (first, second):
        assert (await app.client.get(PLUGINS, headers=watcher)).status_code == 200  # cached
    etag = (await first.client.get(f"{ROLES}/watcher", headers=admin)).headers["etag"]
    if how == "permission removed":
        changed = await first.client.patch(
            f"{ROLES}/watcher", json={"permissions": []}, headers={**admin, "If-Match": etag}
        )
        assert changed.status_code == 200, changed.text
    else:
        user_id = await user_id_of(first, watcher)
        await patch_user(first, admin, user_id, {"roles": ["viewer"]})
        gone = await first.client.delete(f"{ROLES}/watcher", headers={**admin, "If-Match": etag})
        assert gone.status_code == 204, gone.text
    assert (await first.client.get(PLUGINS, headers=watcher)).status_code in (401, 403)
    started = time.monotonic()
    while (await second.client.get(PLUGINS, headers=watcher)).status_code == 200:
        assert time.monotonic() - started < 5, "the other process never heard of the change"
        await asyncio.sleep(0.02)
