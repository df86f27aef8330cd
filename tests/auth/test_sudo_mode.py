"""Sudo mode for API keys: a key made with an access token needs the acting user's own
``current_password``, as a stolen token must not leave a key behind.

Before: with only an access token (which expires in minutes) one could make an API
key (which does not).
"""

from __future__ import annotations

from typing import Any

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD

USERS, ROLES, KEYS = "/api/v1/auth/users", "/api/v1/auth/roles", "/api/v1/auth/api-keys"


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(f":{slug}"), response.json()


async def patch(crm2: Crm2TestApp, headers: dict[str, str], url: str, body: Any) -> Any:
    etag = (await crm2.client.get(url, headers=headers)).headers["etag"]
    return await crm2.client.patch(url, json=body, headers={**headers, "If-Match": etag})


async def test_an_api_key_made_with_an_access_token_needs_the_current_password(
    crm2: Crm2TestApp,
) -> None:
    admin = await crm2.login("admin")
    body = {"name": "sync", "role": "viewer"}
    assert_problem(
        await crm2.client.post(KEYS, json=body, headers=admin), 422, "current-password-required"
    )
    wrong = {**body, "current_password": "not my password"}
    assert_problem(
        await crm2.client.post(KEYS, json=wrong, headers=admin), 403, "wrong-current-password"
    )
    listed = (await crm2.client.get(KEYS, headers=admin)).json()["items"]
    assert listed == []
    right = {**body, "role": "admin", "current_password": TEST_PASSWORD}
    made = await crm2.client.post(KEYS, json=right, headers=admin)
    assert made.status_code == 201, made.text
    # a key makes keys without a password: they end with it (and expire no later)
    key = {"X-API-Key": made.json()["key"]}
    child = await crm2.client.post(KEYS, json=body, headers=key)
    assert child.status_code == 201, child.text


async def test_a_holder_who_may_not_make_the_key_is_told_so_before_any_password(
    crm2: Crm2TestApp,
) -> None:
    created = await crm2.client.post(
        ROLES,
        json={"name": "keyer", "permissions": ["auth:api_keys"]},
        headers=await crm2.login("admin"),
    )
    assert created.status_code == 201, created.text
    keyer = await crm2.login("keyer")
    refused = await crm2.client.post(KEYS, json={"name": "k", "role": "admin"}, headers=keyer)
    assert_problem(refused, 403, "privilege-escalation")
