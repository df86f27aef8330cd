"""``Idempotency-Key`` on creating POSTs: one effect per key and user, the response replayed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import APIRouter, status

from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, hookimpl

USERS = "/api/v1/auth/users"


def new_user() -> dict[str, Any]:
    return {
        "email": f"idem-{uuid.uuid4().hex[:8]}@example.com",
        "password": TEST_PASSWORD,
        "roles": ["agent"],
    }


async def count_users(crm2: Crm2TestApp, headers: dict[str, str], email: str) -> int:
    response = await crm2.client.get(USERS, params={"limit": 200}, headers=headers)
    assert response.status_code == 200
    return sum(1 for user in response.json()["items"] if user["email"] == email)


async def test_same_key_and_body_replays_the_stored_response(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "create-ada-1"}
    body = new_user()

    first = await crm2.client.post(USERS, json=body, headers=headers)
    second = await crm2.client.post(USERS, json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == first.headers["etag"]
    assert await count_users(crm2, admin, body["email"]) == 1


async def test_same_key_with_another_body_is_422_problem(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "create-1"}
    first = await crm2.client.post(USERS, json=new_user(), headers=headers)
    assert first.status_code == 201

    second = await crm2.client.post(USERS, json=new_user(), headers=headers)

    assert second.status_code == 422
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["type"] == "urn:crm2:problem:idempotency-key-reused"


async def test_keys_are_scoped_per_user(crm2: Crm2TestApp) -> None:
    alice = await crm2.login("admin")
    bob = await crm2.login("admin")
    first = await crm2.client.post(
        USERS, json=new_user(), headers={**alice, "Idempotency-Key": "shared-key"}
    )
    assert first.status_code == 201

    body = new_user()
    second = await crm2.client.post(
        USERS, json=body, headers={**bob, "Idempotency-Key": "shared-key"}
    )

    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert await count_users(crm2, alice, body["email"]) == 1


async def test_invalid_key_is_400_problem(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")

    response = await crm2.client.post(
        USERS, json=new_user(), headers={**admin, "Idempotency-Key": "x" * 256}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


class Slow:
    """``POST /api/v1/slow/things`` waits for ``release`` after setting ``entered``."""

    manifest = PluginManifest(name="slow", title="Slow")

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/slow")

        @router.post("/things", status_code=status.HTTP_201_CREATED)
        async def create_thing() -> dict[str, int]:
            self.calls += 1
            self.entered.set()
            await self.release.wait()
            return {"call": self.calls}

        return [router]


async def test_same_key_while_the_first_is_running_is_409_problem(
    crm2_app_factory: AppFactory,
) -> None:
    slow = Slow()
    crm2 = await crm2_app_factory(extra_plugins=(slow,))
    headers = {**(await crm2.login("admin")), "Idempotency-Key": "slow-1"}
    first = asyncio.create_task(crm2.client.post("/api/v1/slow/things", json={}, headers=headers))
    try:
        await asyncio.wait_for(slow.entered.wait(), timeout=10)

        second = await crm2.client.post("/api/v1/slow/things", json={}, headers=headers)
    finally:
        slow.release.set()
        first_response = await first

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["type"] == "urn:crm2:problem:idempotency-in-flight"
    assert first_response.status_code == 201
    assert slow.calls == 1


class Flaky:
    """``POST /api/v1/flaky/things`` fails with an unhandled error the first time only."""

    manifest = PluginManifest(name="flaky", title="Flaky")

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/flaky")

        @router.post("/things", status_code=status.HTTP_201_CREATED)
        async def create_thing() -> dict[str, int]:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("first attempt fails")
            return {"call": self.calls}

        return [router]


async def test_server_error_does_not_store_the_key(crm2_app_factory: AppFactory) -> None:
    flaky = Flaky()
    crm2 = await crm2_app_factory(extra_plugins=(flaky,))
    headers = {**(await crm2.login("admin")), "Idempotency-Key": "flaky-1"}
    transport = httpx.ASGITransport(app=crm2.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm2.test") as client:
        failed = await client.post("/api/v1/flaky/things", json={}, headers=headers)
        retried = await client.post("/api/v1/flaky/things", json={}, headers=headers)

    assert failed.status_code == 500
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert retried.json() == {"call": 2}
