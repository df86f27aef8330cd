"""Idempotency-Key against a real uvicorn process: immediate replays and SIGKILL at the commit.

Each test is bounded (a few requests, every wait capped) and runs on SQLite and
PostgreSQL. The server (``idempotency_server.py``) shares the test's database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from crm2_core.auth.models import User
from crm2_core.http.models import IdempotencyRecord
from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp, TestDatabase
from crm2_core.testing.app import TEST_PASSWORD
from crm2_core.testing.pytest_plugin import AppFactory

SERVER = Path(__file__).parent / "idempotency_server.py"
USERS = "/api/v1/auth/users"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(
    database: TestDatabase, port: int, pause_at: str | None, marker: Path | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CRM2_ENV": "test",
        "CRM2_DATABASE_URL": database.url,
        "CRM2_PLUGINS": "",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
    }
    if pause_at is not None and marker is not None:
        env |= {"CRM2_TEST_PAUSE_AT": pause_at, "CRM2_TEST_PAUSE_MARKER": str(marker)}
    return subprocess.Popen(
        [sys.executable, str(SERVER), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def paused(marker: Path) -> bool:
    return marker.exists()


@asynccontextmanager
async def server(
    database: TestDatabase, pause_at: str | None = None, marker: Path | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, subprocess.Popen[bytes]]]:
    """A crm2 process on a free 127.0.0.1 port, and a client for it; killed on exit."""
    port = free_port()
    process = start_process(database, port, pause_at, marker)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.1)
            yield client, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": TEST_PASSWORD}
    response = await client.post("/api/v1/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def new_user() -> dict[str, Any]:
    return {"email": f"crash-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}


async def users_named(app: Crm2TestApp, email: str) -> int:
    async with app.context.session_factory() as session:
        found = await session.execute(
            select(func.count()).select_from(User).where(User.email == email)
        )
        return int(found.scalar_one())


async def stored_keys(app: Crm2TestApp, key: str) -> list[IdempotencyRecord]:
    async with app.context.session_factory() as session:
        rows = await session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        return list(rows.scalars())


async def kill_when_paused(
    client: httpx.AsyncClient,
    process: subprocess.Popen[bytes],
    marker: Path,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """Send the POST, SIGKILL the server once it froze at its pause point; no answer arrives."""
    request = asyncio.create_task(client.post(USERS, json=body, headers=headers))
    deadline = time.monotonic() + 20
    while not paused(marker):
        assert not request.done(), "the request finished without reaching the pause point"
        assert time.monotonic() < deadline, "the server never reached the pause point"
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    try:
        await asyncio.wait_for(request, timeout=10)
    except httpx.TransportError:
        return
    raise AssertionError("a response arrived from the killed server")


async def test_replay_sent_as_soon_as_the_first_201_arrives_is_the_stored_response(
    crm2_app_factory: AppFactory, crm2_database: TestDatabase
) -> None:
    app = await crm2_app_factory()
    email = f"idem-admin-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user("admin", email=email)
    rounds = 10
    async with server(crm2_database) as (client, _):
        headers = await login(client, email)
        for n in range(rounds):
            keyed = {**headers, "Idempotency-Key": f"immediate-{n}"}
            body = new_user()
            first = await client.post(USERS, json=body, headers=keyed)
            again = await client.post(USERS, json=body, headers=keyed)

            assert first.status_code == 201, first.text
            assert again.status_code == 201, again.text
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json() == first.json()
            assert await users_named(app, body["email"]) == 1


async def test_sigkill_before_the_commit_leaves_no_effect_and_no_key(
    crm2_app_factory: AppFactory, crm2_database: TestDatabase, tmp_path: Path
) -> None:
    app = await crm2_app_factory()
    email = f"idem-admin-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user("admin", email=email)
    body, marker = new_user(), tmp_path / "paused"
    async with server(crm2_database, "before_commit", marker) as (client, process):
        headers = {**await login(client, email), "Idempotency-Key": "killed-before-commit"}
        await kill_when_paused(client, process, marker, body, headers)

    assert await users_named(app, body["email"]) == 0
    assert await stored_keys(app, "killed-before-commit") == []

    async with server(crm2_database) as (client, _):
        retried = await client.post(USERS, json=body, headers=headers)
        replayed = await client.post(USERS, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert await users_named(app, body["email"]) == 1


async def test_sigkill_after_the_commit_leaves_the_effect_and_its_stored_response(
    crm2_app_factory: AppFactory, crm2_database: TestDatabase, tmp_path: Path
) -> None:
    app = await crm2_app_factory()
    email = f"idem-admin-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user("admin", email=email)
    body, marker = new_user(), tmp_path / "paused"
    async with server(crm2_database, "after_commit", marker) as (client, process):
        headers = {**await login(client, email), "Idempotency-Key": "killed-after-commit"}
        await kill_when_paused(client, process, marker, body, headers)

    assert await users_named(app, body["email"]) == 1
    [row] = await stored_keys(app, "killed-after-commit")
    assert (row.state, row.response_status) == ("done", 201)

    async with server(crm2_database) as (client, _):
        retried = await client.post(USERS, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["email"] == body["email"]
    assert await users_named(app, body["email"]) == 1
