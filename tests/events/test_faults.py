"""Fault tests on the machine's real PostgreSQL/SQLite, RabbitMQ and processes.

Each is bounded in count and time and prints: sent, delivered, lost (must be
0), duplicate effects (must be 0).
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
from pathlib import Path

import httpx
import probe_plugin
from brokers import (
    RABBITMQ_URL,
    cleanup,
    ready_messages,
    unique_prefix,
    worker_process,
)
from helpers import effects, event_rows, wait_for
from probe_plugin import ProbeEffect
from sqlalchemy import func, select
from tcp_proxy import TcpProxy

from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp, TestDatabase, stop_process
from crm2_core.testing.app import TEST_PASSWORD

SERVE = Path(__file__).parent / "serve_main.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_process(database_url: str, port: int, *extra: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CRM2_ENV": "test",
        "CRM2_DATABASE_URL": database_url,
        "CRM2_PLUGINS": "probe",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
        "CRM2_RELAY_INTERVAL_SECONDS": "0.2",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVE),
        str(port),
        *extra,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_healthy(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not start")
            await asyncio.sleep(0.1)


async def effect_counts(app: Crm2TestApp) -> dict[uuid.UUID, int]:
    async with app.context.session_factory() as session:
        rows = await session.execute(
            select(ProbeEffect.event_id, func.count()).group_by(ProbeEffect.event_id)
        )
        return {event_id: int(n) for event_id, n in rows}


def report(name: str, sent: set[uuid.UUID], counts: dict[uuid.UUID, int]) -> tuple[int, int]:
    delivered = sum(1 for e in sent if counts.get(e, 0) >= 1)
    lost = len(sent) - delivered
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\n{name}: sent={len(sent)} delivered={delivered} lost={lost} "
        f"duplicate_effects={duplicates}"
    )
    return lost, duplicates


async def _idle_test_app(crm2_app_factory, **settings) -> Crm2TestApp:  # type: ignore[no-untyped-def]
    """An app used only to migrate, create users and read the database: its relay is stopped."""
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), **settings)
    await app.context.events.close()
    return app


async def test_api_killed_between_commit_and_relay_loses_nothing(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    app = await _idle_test_app(crm2_app_factory)
    email = f"fault-{uuid.uuid4().hex[:8]}@example.com"
    await app.create_user("agent", email=email)
    port = free_port()
    first = await serve_process(crm2_database.url, port, "--no-relay")
    sent: set[uuid.UUID] = set()
    try:
        await wait_healthy(port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for n in range(20):
                response = await client.post("/api/v1/probe/items", json={"n": n}, headers=headers)
                assert response.status_code == 201
                sent.add(uuid.UUID(response.json()["event_id"]))
        first.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.wait(), 10)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    unrelayed = [r for r in await event_rows(app) if r.relayed_at is None]
    assert len(unrelayed) == 20, "the kill must land after commit and before the relay"

    second = await serve_process(crm2_database.url, port)
    try:
        await wait_healthy(port)

        async def all_delivered() -> bool:
            return len(await effect_counts(app)) == len(sent)

        await wait_for(all_delivered, within=30)
    except BaseException:
        await stop_process(second)
        raise
    assert await stop_process(second), "crm2 serve did not stop within 30 s of SIGTERM"
    lost, duplicates = report(
        "api SIGKILL between commit and relay", sent, await effect_counts(app)
    )
    assert (lost, duplicates) == (0, 0)
    assert all(r.relayed_at is not None for r in await event_rows(app))


async def test_worker_killed_mid_handler_is_redelivered_once(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    try:
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,), broker_url=RABBITMQ_URL, broker_queue_prefix=prefix
        )
        headers = await app.login("agent")
        sent: set[uuid.UUID] = set()
        async with worker_process(crm2_database.url, "amqp", prefix, slow_seconds=30) as first:
            response = await app.client.post(
                "/api/v1/probe/items", json={"n": 1000}, headers=headers
            )
            sent.add(uuid.UUID(response.json()["event_id"]))

            async def taken_by_worker() -> bool:
                return await asyncio.to_thread(ready_messages, f"{prefix}.probe") == 0

            await wait_for(taken_by_worker, within=30)
            await asyncio.sleep(1.5)  # inside the (30 s) handler by now
            first.send_signal(signal.SIGKILL)
            await asyncio.wait_for(first.wait(), 10)
        assert await effects(app) == 0, "the handler was killed before it committed"
        async with worker_process(crm2_database.url, "amqp", prefix):

            async def redone() -> bool:
                return await effects(app) == 1

            await wait_for(redone, within=30)
        lost, duplicates = report("worker SIGKILL mid-handler", sent, await effect_counts(app))
        assert (lost, duplicates) == (0, 0)
    finally:
        cleanup("amqp", prefix)


async def test_broker_unreachable_writes_continue_and_outbox_drains(
    crm2_app_factory, crm2_database: TestDatabase
) -> None:
    prefix = unique_prefix()
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    try:
        user_info = RABBITMQ_URL.split("://", 1)[1].split("@", 1)[0]
        proxied = f"amqp://{user_info}@127.0.0.1:{proxy.port}/%2F"
        app = await crm2_app_factory(
            extra_plugins=(probe_plugin,),
            broker_url=proxied,
            broker_queue_prefix=prefix,
            relay_interval_seconds=0.2,
        )
        headers = await app.login("agent")
        sent: set[uuid.UUID] = set()

        async def write(count: int) -> None:
            for n in range(count):
                response = await app.client.post(
                    "/api/v1/probe/items", json={"n": n}, headers=headers
                )
                assert response.status_code == 201, response.text
                sent.add(uuid.UUID(response.json()["event_id"]))

        # The worker relays too: it must reach the broker through the same proxy, or
        # it would relay what the API process cannot.
        async with worker_process(crm2_database.url, "amqp", prefix, url=proxied):
            await write(5)
            await proxy.cut()
            await write(15)  # the broker is unreachable: writes still succeed
            await asyncio.sleep(1.0)
            held = [r for r in await event_rows(app) if r.relayed_at is None]
            assert len(held) >= 10, "the outbox holds what could not be sent"
            await proxy.restore()

            async def drained() -> bool:
                return len(await effect_counts(app)) == len(sent)

            await wait_for(drained, within=45)
        lost, duplicates = report("broker cut while writing", sent, await effect_counts(app))
        assert (lost, duplicates) == (0, 0)
    finally:
        await proxy.close()
        cleanup("amqp", prefix)
