"""API keys: scoped to a role, shown once, stored hashed, revocable, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from crm2_core.auth.models import ApiKey
from crm2_core.testing import Crm2TestApp, TestDatabase, sent_to_postgresql
from crm2_core.testing.app import TEST_PASSWORD

KEYS, USERS, ROLES = "/api/v1/auth/api-keys", "/api/v1/auth/users", "/api/v1/auth/roles"


@pytest.fixture
async def admin(crm2: Crm2TestApp) -> dict[str, str]:
    return await crm2.login("admin")


async def create_key(
    crm2: Crm2TestApp, admin: dict[str, str], role: str = "viewer", **extra: Any
) -> Any:
    body = {"name": "warehouse sync", "role": role, **extra, "current_password": TEST_PASSWORD}
    response = await crm2.client.post(KEYS, json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def expire(crm2: Crm2TestApp, prefix: str) -> None:
    """Move the key's expiry a second into the past (as if it had run out)."""
    async with crm2.context.session_factory() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


async def test_created_key_is_in_the_response_once(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    created = await create_key(crm2, admin)
    assert created["key"].startswith("crm2_")
    assert created["role"] == "viewer"
    assert created["prefix"] in created["key"]
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert created["key"] not in str(listed)


async def test_key_authenticates_as_bearer(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin, role="admin")
    response = await crm2.client.get(USERS, headers=bearer(created["key"]))
    assert response.status_code == 200, response.text


async def test_key_authenticates_with_x_api_key(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin, role="admin")
    response = await crm2.client.get(USERS, headers={"X-API-Key": created["key"]})
    assert response.status_code == 200, response.text


async def test_key_has_its_roles_permissions_only(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin, role="viewer")
    response = await crm2.client.get(USERS, headers=bearer(created["key"]))
    assert response.status_code == 403, response.text


async def test_key_gets_a_custom_roles_permissions(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    await crm2.client.post(
        ROLES, json={"name": "user-sync", "permissions": ["auth:users"]}, headers=admin
    )
    created = await create_key(crm2, admin, role="user-sync")
    assert (await crm2.client.get(USERS, headers=bearer(created["key"]))).status_code == 200
    assert (await crm2.client.get(KEYS, headers=bearer(created["key"]))).status_code == 403


async def test_key_on_me_is_403_not_a_user(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin)
    response = await crm2.client.get("/api/v1/auth/me", headers=bearer(created["key"]))
    assert response.status_code == 403


async def test_revoked_key_is_401(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin, role="admin")
    assert (await crm2.client.delete(f"{KEYS}/{created['id']}", headers=admin)).status_code == 204
    response = await crm2.client.get(USERS, headers=bearer(created["key"]))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert listed[0]["revoked_at"] is not None


async def test_expired_key_is_401(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin, role="admin")
    await expire(crm2, created["prefix"])
    assert (await crm2.client.get(USERS, headers=bearer(created["key"]))).status_code == 401


async def test_key_with_future_expiry_works(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await create_key(crm2, admin, role="admin", expires_at=expires)
    assert created["expires_at"] is not None
    assert (await crm2.client.get(USERS, headers=bearer(created["key"]))).status_code == 200


async def test_with_the_cache_off_a_key_costs_one_statement_per_request(
    crm2_app_factory: Any, crm2_database: TestDatabase
) -> None:
    """``CRM2_AUTH_CREDENTIALS_CACHE_SECONDS=0``: the key's row is read on every request,
    in one round trip on PostgreSQL (no transaction around it), and its expiry, revocation
    and role still hold."""
    crm2 = await crm2_app_factory(plugin_settings={"auth": {"credentials_cache_seconds": 0}})
    admin = await crm2.login("admin")
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await create_key(crm2, admin, role="admin", expires_at=expires)
    key = bearer(created["key"])
    assert (await crm2.client.get(USERS, headers=key)).status_code == 200  # first use: written
    loads = crm2.context.authenticator.api_keys.loads
    with sent_to_postgresql() as sent:
        assert (await crm2.client.get("/api/v1/plugins", headers=key)).status_code == 200
    assert crm2.context.authenticator.api_keys.loads == loads + 1  # read again
    if crm2_database.backend == "postgresql":
        assert len(sent) == 1, sent
        assert sent[0].startswith("SELECT") and "auth_api_key" in sent[0], sent
    await expire(crm2, created["prefix"])
    assert (await crm2.client.get(USERS, headers=key)).status_code == 401
    other = await create_key(crm2, admin, role="viewer")
    assert (await crm2.client.get(USERS, headers=bearer(other["key"]))).status_code == 403
    assert (await crm2.client.delete(f"{KEYS}/{other['id']}", headers=admin)).status_code == 204
    assert (await crm2.client.get(USERS, headers=bearer(other["key"]))).status_code == 401


async def test_naive_expiry_is_422(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    body = {"name": "x", "role": "viewer", "expires_at": "2030-01-01T00:00:00"}
    assert (await crm2.client.post(KEYS, json=body, headers=admin)).status_code == 422


@pytest.mark.parametrize(
    ("expires_at", "listed"),
    [
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999998Z"),
        ("9999-12-31T12:00:00-14:00", "9999-12-31T23:59:59.999998Z"),
    ],
    ids=["last-instant", "past-the-last"],
)
async def test_expiry_at_the_ends_of_time_is_kept_just_inside_them(
    crm2: Crm2TestApp, admin: dict[str, str], expires_at: str, listed: str
) -> None:
    """PostgreSQL would store datetime.max as infinity, read back naive: a 500 on use."""
    created = await create_key(crm2, admin, role="admin", expires_at=expires_at)
    assert (await crm2.client.get(USERS, headers=bearer(created["key"]))).status_code == 200
    keys = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["expires_at"] for k in keys] == [listed]


@pytest.mark.parametrize(
    "expires_at",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T10:00:00+14:00",
        "2020-01-01T00:00:00Z",
        (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    ],
    ids=["first-instant", "before-the-first", "years-ago", "a-second-ago"],
)
async def test_expiry_already_past_is_422_and_makes_no_key(
    crm2: Crm2TestApp, admin: dict[str, str], expires_at: str
) -> None:
    """A key that expired before it was made came back 201 and never worked."""
    body = {
        "name": "x",
        "role": "viewer",
        "expires_at": expires_at,
        "current_password": TEST_PASSWORD,
    }

    response = await crm2.client.post(KEYS, json=body, headers=admin)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "expires_at" in response.text
    assert (await crm2.client.get(KEYS, headers=admin)).json()["items"] == []


async def test_expiry_before_the_first_storable_instant_is_422_naming_the_field(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """0001-01-01T00:00:00+01:00 is before datetime.min in UTC: it was clamped silently."""
    body = {
        "name": "x",
        "role": "viewer",
        "expires_at": "0001-01-01T00:00:00+01:00",
        "current_password": TEST_PASSWORD,
    }

    response = await crm2.client.post(KEYS, json=body, headers=admin)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:crm2:problem:validation-error"
    assert [e["loc"] for e in problem["errors"]] == [["body", "expires_at"]]
    assert "first instant" in problem["detail"]


async def test_expiry_past_the_last_instant_is_echoed_as_it_is_stored(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """The POST echoed the raw time while every later read showed the clamped one."""
    created = await create_key(crm2, admin, expires_at="9999-12-31T12:00:00-14:00")

    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]

    assert created["expires_at"] == listed[0]["expires_at"] == "9999-12-31T23:59:59.999998Z"


async def test_key_is_stored_only_hashed(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    created = await create_key(crm2, admin)
    async with crm2.context.session_factory() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert row.key_hash != created["key"]
    assert len(row.key_hash) == 64
    secret_part = created["key"].split("_")[2]
    assert secret_part not in row.key_hash and secret_part not in row.prefix


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), id="wrong-secret"),
        pytest.param(lambda k: "crm2_ffffffff_" + k.split("_")[2], id="unknown-prefix"),
        pytest.param(lambda k: k + "_extra", id="malformed"),
    ],
)
async def test_wrong_key_is_401(crm2: Crm2TestApp, admin: dict[str, str], mangle: Any) -> None:
    created = await create_key(crm2, admin, role="admin")
    response = await crm2.client.get(USERS, headers={"X-API-Key": mangle(created["key"])})
    assert response.status_code == 401


async def test_unknown_role_for_key_is_422(crm2: Crm2TestApp, admin: dict[str, str]) -> None:
    response = await crm2.client.post(
        KEYS, json={"name": "x", "role": "wizard", "current_password": TEST_PASSWORD}, headers=admin
    )
    assert response.status_code == 422


async def test_non_admin_gets_403_on_api_keys(crm2: Crm2TestApp) -> None:
    headers = await crm2.login("manager")
    assert (await crm2.client.get(KEYS, headers=headers)).status_code == 403
    response = await crm2.client.post(
        KEYS,
        json={"name": "x", "role": "admin", "current_password": TEST_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 403


async def test_role_of_a_live_key_cannot_be_deleted(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    await crm2.client.post(ROLES, json={"name": "sync"}, headers=admin)
    await create_key(crm2, admin, role="sync")
    assert (await crm2.client.delete(f"{ROLES}/sync", headers=admin)).status_code == 409


async def test_role_named_only_by_revoked_keys_is_deleted_with_them(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    await crm2.client.post(ROLES, json={"name": "sync"}, headers=admin)
    revoked = await create_key(crm2, admin, role="sync")
    kept = await create_key(crm2, admin, role="viewer")
    assert (await crm2.client.delete(f"{KEYS}/{revoked['id']}", headers=admin)).status_code == 204

    assert (await crm2.client.delete(f"{ROLES}/sync", headers=admin)).status_code == 204

    assert (await crm2.client.get(f"{ROLES}/sync", headers=admin)).status_code == 404
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert [k["id"] for k in listed] == [kept["id"]]
    assert (await crm2.client.get(USERS, headers=bearer(revoked["key"]))).status_code == 401


async def test_a_key_made_with_an_expiring_key_does_not_outlive_it(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """An hour's key (a contractor's, a CI job's) cannot mint a key that lasts longer."""
    ends = datetime.now(UTC) + timedelta(hours=1)
    made = await create_key(crm2, admin, role="admin", expires_at=ends.isoformat())
    parent = bearer(made["key"])
    for later in (None, (ends + timedelta(hours=1)).isoformat()):
        body = {
            "name": "forever",
            "role": "viewer",
            "expires_at": later,
            "current_password": TEST_PASSWORD,
        }
        response = await crm2.client.post(KEYS, json=body, headers=parent)
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("privilege-escalation")
        assert "expires" in response.json()["detail"]
    sooner = (ends - timedelta(minutes=30)).isoformat()
    body = {
        "name": "shorter",
        "role": "viewer",
        "expires_at": sooner,
        "current_password": TEST_PASSWORD,
    }
    assert (await crm2.client.post(KEYS, json=body, headers=parent)).status_code == 201
    at_most = {
        "name": "as long",
        "role": "viewer",
        "expires_at": ends.isoformat(),
        "current_password": TEST_PASSWORD,
    }
    assert (await crm2.client.post(KEYS, json=at_most, headers=parent)).status_code == 201
    forever = bearer((await create_key(crm2, admin, role="admin"))["key"])
    body = {"name": "forever too", "role": "viewer", "current_password": TEST_PASSWORD}
    assert (await crm2.client.post(KEYS, json=body, headers=forever)).status_code == 201


async def test_the_key_list_shows_only_keys_the_caller_could_manage(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    """Listing, like revoking, needs the key's role: an ``auth:api_keys`` holder sees
    the keys of roles they hold and their own, never an admin's key."""
    for name, permissions in (
        ("keyer", ["auth:api_keys", "core:plugins"]),
        ("reader", ["core:plugins"]),
    ):
        body = {"name": name, "permissions": permissions}
        assert (await crm2.client.post(ROLES, json=body, headers=admin)).status_code == 201
    admins = await create_key(crm2, admin, role="admin")
    readers = await create_key(crm2, admin, role="reader")
    keyer = await crm2.login("keyer")
    own = await create_key(crm2, keyer, role="reader")

    def ids(response: Any) -> set[str]:
        assert response.status_code == 200, response.text
        return {k["id"] for k in response.json()["items"]}

    assert ids(await crm2.client.get(KEYS, headers=keyer)) == {readers["id"], own["id"]}
    everything = {admins["id"], readers["id"], own["id"]}
    assert ids(await crm2.client.get(KEYS, headers=admin)) == everything

    # the keyer's role loses core:plugins: their own key (revoked with it) stays in view
    url = f"{ROLES}/keyer"
    etag = (await crm2.client.get(url, headers=admin)).headers["etag"]
    changed = await crm2.client.patch(
        url, json={"permissions": ["auth:api_keys"]}, headers={**admin, "If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert ids(await crm2.client.get(KEYS, headers=keyer)) == {own["id"]}


@pytest.mark.parametrize("ahead", [timedelta(milliseconds=5), timedelta(seconds=59)])
async def test_a_key_that_would_expire_within_a_minute_is_422_and_makes_no_key(
    crm2: Crm2TestApp, admin: dict[str, str], ahead: timedelta
) -> None:
    """A key expiring milliseconds after it was made came back 201 and expired before use."""
    body = {
        "name": "x",
        "role": "viewer",
        "expires_at": (datetime.now(UTC) + ahead).isoformat(),
        "current_password": TEST_PASSWORD,
    }

    response = await crm2.client.post(KEYS, json=body, headers=admin)

    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:crm2:problem:expiry-passed"
    assert "60 seconds" in response.json()["detail"]
    assert (await crm2.client.get(KEYS, headers=admin)).json()["items"] == []


async def test_a_key_living_a_little_over_a_minute_is_made(
    crm2: Crm2TestApp, admin: dict[str, str]
) -> None:
    expires = (datetime.now(UTC) + timedelta(seconds=90)).isoformat()
    body = {"name": "x", "role": "viewer", "expires_at": expires, "current_password": TEST_PASSWORD}
    assert (await crm2.client.post(KEYS, json=body, headers=admin)).status_code == 201
