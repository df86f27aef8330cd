"""``Idempotency-Key`` on creating POSTs: one effect per key and user, the response replayed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Response, status
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from crm2_core.auth.models import User
from crm2_core.auth.schemas import UserCreate
from crm2_core.http.deps import ContextDep, SessionDep
from crm2_core.http.idempotency import IdempotencyMiddleware
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


async def test_a_no_store_response_is_not_kept_and_its_repeat_does_not_show_it(
    crm2: Crm2TestApp,
) -> None:
    from crm2_core.http.models import IdempotencyRecord

    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "feed-key-1"}
    body = {"name": "feed", "role": "viewer", "current_password": TEST_PASSWORD}

    first = await crm2.client.post("/api/v1/auth/api-keys", json=body, headers=headers)
    second = await crm2.client.post("/api/v1/auth/api-keys", json=body, headers=headers)

    assert first.status_code == 201, first.text
    secret = first.json()["key"]
    async with crm2.context.session_factory() as session:
        stored = (await session.execute(select(IdempotencyRecord))).scalar_one()
    assert stored.response_status == 201 and stored.response_body is None
    assert secret not in (stored.response_headers or "")
    assert second.status_code == 409, second.text
    assert second.json()["type"] == "urn:crm2:problem:idempotent-response-not-kept"
    assert secret not in second.text
    assert second.headers["cache-control"] == "no-store"
    listed = await crm2.client.get("/api/v1/auth/api-keys", headers=admin)
    assert len(listed.json()["items"]) == 1  # the repeat created nothing


class Cached:
    """``POST /api/v1/cached/things`` answers with a ``Cache-Control`` of its own."""

    manifest = PluginManifest(name="cached", title="Cached")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/cached")

        @router.post("/things", status_code=status.HTTP_201_CREATED)
        async def create_thing(response: Response, session: SessionDep) -> dict[str, Any]:
            response.headers["Cache-Control"] = "private, max-age=60"
            return {"thing": 1}

        return [router]


async def test_replay_keeps_the_responses_cache_control(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory(extra_plugins=(Cached(),))
    headers = {**await app.login("admin"), "Idempotency-Key": "thing-1"}

    first = await app.client.post("/api/v1/cached/things", headers=headers)
    second = await app.client.post("/api/v1/cached/things", headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["cache-control"] == "private, max-age=60"


class SlowUsers:
    """``POST /api/v1/slow/users`` creates a user in the request's transaction, then waits
    for ``release`` (after setting ``entered``); ``fail_first`` makes the first call raise.
    ``calls`` counts the effects written (committed or not)."""

    manifest = PluginManifest(name="slow", title="Slow")

    def __init__(self, *, fail_first: bool = False) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self.fail_first = fail_first

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/slow")

        @router.post("/users", status_code=status.HTTP_201_CREATED)
        async def create_user(
            body: dict[str, Any], context: ContextDep, session: SessionDep
        ) -> dict[str, Any]:
            user = await context.auth.create_user(session, UserCreate(**body))
            await session.flush()
            self.calls += 1  # the effect ran (written, not yet committed)
            if self.fail_first and self.calls == 1:
                raise RuntimeError("fails after writing")
            self.entered.set()
            await self.release.wait()
            return {"id": str(user.id), "call": self.calls}

        return [router]


SLOW_USERS = "/api/v1/slow/users"


async def test_duplicate_while_the_first_runs_waits_and_replays_its_response(
    crm2_app_factory: AppFactory,
) -> None:
    slow = SlowUsers()
    crm2 = await crm2_app_factory(extra_plugins=(slow,))
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "slow-1"}
    body = new_user()
    first = asyncio.create_task(crm2.client.post(SLOW_USERS, json=body, headers=headers))
    try:
        await asyncio.wait_for(slow.entered.wait(), timeout=10)
        second = asyncio.create_task(crm2.client.post(SLOW_USERS, json=body, headers=headers))
        await asyncio.sleep(0.5)
        waited = not second.done()
    finally:
        slow.release.set()
    first_response, second_response = await first, await second

    assert waited
    assert first_response.status_code == 201, first_response.text
    assert second_response.status_code == 201, second_response.text
    assert second_response.headers["idempotent-replayed"] == "true"
    assert second_response.json() == first_response.json()
    assert slow.calls == 1
    assert await count_users(crm2, admin, body["email"]) == 1


async def test_duplicate_waits_at_most_the_wait_then_is_409_problem(
    crm2_app_factory: AppFactory,
) -> None:
    slow = SlowUsers()
    crm2 = await crm2_app_factory(extra_plugins=(slow,), idempotency_wait_seconds=0.3)
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "slow-2"}
    body = new_user()
    first = asyncio.create_task(crm2.client.post(SLOW_USERS, json=body, headers=headers))
    try:
        await asyncio.wait_for(slow.entered.wait(), timeout=10)
        second = await asyncio.wait_for(
            crm2.client.post(SLOW_USERS, json=body, headers=headers), timeout=10
        )
    finally:
        slow.release.set()
    first_response = await first

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["type"] == "urn:crm2:problem:idempotency-in-flight"
    assert first_response.status_code == 201
    assert slow.calls == 1
    assert await count_users(crm2, admin, body["email"]) == 1


async def test_server_error_keeps_neither_the_effect_nor_the_key(
    crm2_app_factory: AppFactory,
) -> None:
    slow = SlowUsers(fail_first=True)
    slow.release.set()
    crm2 = await crm2_app_factory(extra_plugins=(slow,))
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "flaky-1"}
    body = new_user()
    transport = httpx.ASGITransport(app=crm2.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm2.test") as client:
        failed = await client.post(SLOW_USERS, json=body, headers=headers)
        users_after_failure = await count_users(crm2, admin, body["email"])
        retried = await client.post(SLOW_USERS, json=body, headers=headers)

    assert failed.status_code == 500
    assert users_after_failure == 0
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["call"] == 2
    assert await count_users(crm2, admin, body["email"]) == 1


async def test_error_response_is_not_stored_and_the_retry_runs(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    body = new_user()
    taken = await crm2.client.post(USERS, json=body, headers=admin)
    assert taken.status_code == 201
    headers = {**admin, "Idempotency-Key": "conflict-1"}

    first = await crm2.client.post(USERS, json=body, headers=headers)
    second = await crm2.client.post(USERS, json=body, headers=headers)

    assert first.status_code == second.status_code == 409
    assert "idempotent-replayed" not in second.headers


class AsksFirst:
    """``POST /api/v1/asks/users`` reads in a session of its own before using the request's
    (as a route does that resolves a linked record through ``crm2_resolve_entity``)."""

    manifest = PluginManifest(name="asks", title="Asks")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/asks")

        @router.post("/users", status_code=status.HTTP_201_CREATED)
        async def create_user(
            body: dict[str, Any], context: ContextDep, session: SessionDep
        ) -> dict[str, Any]:
            async with context.session_factory() as other:
                await other.execute(select(User.id).limit(1))
            user = await context.auth.create_user(session, UserCreate(**body))
            return {"id": str(user.id)}

        return [router]


async def test_route_reading_in_its_own_session_first_does_not_wait_for_the_key(
    crm2_app_factory: AppFactory,
) -> None:
    crm2 = await crm2_app_factory(extra_plugins=(AsksFirst(),), idempotency_wait_seconds=5)
    admin = await crm2.login("admin")
    headers = {**admin, "Idempotency-Key": "asks-1"}
    body = new_user()

    first = await asyncio.wait_for(
        crm2.client.post("/api/v1/asks/users", json=body, headers=headers), timeout=4
    )
    again = await crm2.client.post("/api/v1/asks/users", json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true"


class LockTimeoutEcho:
    """``POST /api/v1/lockecho``: the ``lock_timeout`` the route's transaction runs with."""

    manifest = PluginManifest(name="lockecho", title="Lock timeout echo")

    @hookimpl
    def crm2_routers(self) -> Sequence[APIRouter]:
        router = APIRouter(prefix="/api/v1/lockecho")

        @router.post("", status_code=status.HTTP_201_CREATED)
        async def echo(session: SessionDep) -> dict[str, Any]:
            shown = (await session.execute(text("SHOW lock_timeout"))).scalar_one()
            return {"lock_timeout": shown}

        return [router]


async def test_a_new_key_is_claimed_in_one_statement_and_the_lock_timeout_put_back(
    crm2_app_factory: AppFactory,
) -> None:
    """PostgreSQL: the claim of a key nobody holds is one ``INSERT … ON CONFLICT DO
    NOTHING`` that sets the wait and puts it back; the route runs with the lock timeout
    it has without a key."""
    crm2 = await crm2_app_factory(extra_plugins=(LockTimeoutEcho(),))
    if crm2.context.settings.is_sqlite:
        pytest.skip("PostgreSQL's claim (SQLite claims under its write lock)")
    admin = await crm2.login("admin")
    plain = await crm2.client.post("/api/v1/lockecho", headers=admin)
    assert plain.status_code == 201, plain.text
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    engine = crm2.context.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", statement)
    try:
        keyed = await crm2.client.post(
            "/api/v1/lockecho", headers={**admin, "Idempotency-Key": "echo-1"}
        )
    finally:
        sa_event.remove(engine, "before_cursor_execute", statement)
    assert keyed.status_code == 201, keyed.text
    assert keyed.json() == plain.json()
    before_route = seen[: next(i for i, sql in enumerate(seen) if "SHOW lock_timeout" in sql)]
    claims = [sql for sql in before_route if "core_idempotency_key" in sql]
    assert len(claims) == 1 and "ON CONFLICT" in claims[0], before_route
    assert not [sql for sql in before_route if "lock_timeout" in sql and sql not in claims]
    replayed = await crm2.client.post(
        "/api/v1/lockecho", headers={**admin, "Idempotency-Key": "echo-1"}
    )
    assert replayed.headers["idempotent-replayed"] == "true"


def _multipart(boundary: str, content: bytes) -> dict[str, Any]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f"multipart/form-data; boundary={boundary}".encode()
    return {
        "method": "POST",
        "path": "/api/v1/deals/clients/import",
        "query_string": b"",
        "headers": [(b"content-type", content_type)],
        "state": {"body": body},
    }


def test_a_multipart_retry_with_a_new_boundary_is_the_same_request() -> None:
    """Browsers and httpx draw a boundary per request: the parts make the fingerprint."""
    fingerprint = IdempotencyMiddleware._fingerprint
    first = fingerprint(_multipart("a1b2c3", b"name\nAcme\n"))
    assert fingerprint(_multipart("zz-9876", b"name\nAcme\n")) == first
    assert fingerprint(_multipart("zz-9876", b"name\nBeta\n")) != first
