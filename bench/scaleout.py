"""Scale-out run on this machine, no containers: N ``crm2 serve`` + M ``crm2 worker`` processes
on PostgreSQL, RabbitMQ and Redis (all on 127.0.0.1), with the event-bus probe plugin
(tests/events/probe_plugin.py: each handled event writes one ``probe_effect`` row).

1. Throughput: creates/s through 1 API process, then through 3 (round-robin), same load.
2. Faults: 3 API processes with SSE subscribers on each, 2 workers; a bounded run of
   creates during which one API process and one worker are SIGKILLed and restarted.
   At the end: lost = 0 (every acknowledged create's event is in the log and every
   logged event has its effect), duplicate effects = 0, and every subscriber saw every
   event after its start, in order, across its reconnects (Last-Event-ID).

    .venv/bin/python bench/scaleout.py [--seconds 8] [--creates 600]

Bounded in time and count; everything it starts listens on 127.0.0.1 and is stopped at
the end; its PostgreSQL database, RabbitMQ queues and Redis keys are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
EVENTS_TESTS = REPO / "tests" / "events"
sys.path.insert(0, str(EVENTS_TESTS))

import probe_plugin  # noqa: E402
from brokers import cleanup  # noqa: E402

from crm2_core.testing import TEST_JWT_SECRET  # noqa: E402

PG_ADMIN = os.environ.get("CRM2_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS = "redis://127.0.0.1:6379/0"
PASSWORD = "Scaleout-password-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """The processes of one run and the environment they share."""

    def __init__(self, database: str, prefix: str) -> None:
        self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
        self.prefix = prefix
        self.env = {
            **os.environ,
            "CRM2_ENV": "test",
            "CRM2_DATABASE_URL": self.database_url,
            "CRM2_BROKER_URL": RABBITMQ,
            "CRM2_BROKER_QUEUE_PREFIX": prefix,
            "CRM2_REDIS_URL": REDIS,
            "CRM2_REDIS_PREFIX": f"{prefix}:",
            "CRM2_PLUGINS": "probe",
            "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
            "CRM2_RELAY_INTERVAL_SECONDS": "0.2",
            "CRM2_DATABASE_POOL_SIZE": "5",
            "CRM2_SCHEDULER_ENABLED": "false",
            # every follower streams with the one admin's token
            "CRM2_SSE_MAX_CONNECTIONS_PER_PRINCIPAL": "0",
            "CRM2_SSE_MAX_CONNECTIONS": "0",
        }
        self.apis: dict[int, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_api(self, port: int) -> None:
        self.apis[port] = subprocess.Popen(
            [sys.executable, str(EVENTS_TESTS / "serve_main.py"), str(port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, str(EVENTS_TESTS / "worker_main.py")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(process)
        return process

    async def wait_ready(self, ports: Sequence[int], within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            for port in ports:
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"API on {port} not ready")
                    await asyncio.sleep(0.2)

    def stop_all(self) -> None:
        for process in [*self.apis.values(), *self.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.apis.values(), *self.workers]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def pg(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


async def prepare(stack: Stack) -> None:
    """Migrate (core, auth, probe) and create the user the load signs in as."""
    from crm2_core import migrate
    from crm2_core.auth.plugin import sync_permissions
    from crm2_core.auth.schemas import UserCreate
    from crm2_core.http.app import build_app_context
    from crm2_core.settings import Settings

    settings = Settings(
        _env_file=None, env="test", database_url=stack.database_url, plugins="probe"
    )  # type: ignore[call-arg]
    context = build_app_context(
        settings,
        extra_plugins=(probe_plugin,),
        plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}},
    )
    try:
        await migrate.upgrade(context.engine, context.plugins)
        await sync_permissions(context)
        async with context.session_factory() as session:
            data = UserCreate(email="load@example.com", password=PASSWORD, roles=["admin"])
            await context.state["auth"].create_user(session, data)
            await session.commit()
    finally:
        await context.aclose()


async def login(port: int) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"email": "load@example.com", "password": PASSWORD},
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def creates_for(
    ports: Sequence[int], headers: dict[str, str], seconds: float, concurrency: int
) -> int:
    """Closed-loop creates, round-robin over ``ports``, for ``seconds``; returns 201s."""
    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency * len(ports))
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(i: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < deadline:
                port = ports[(i + n) % len(ports)]
                n += 1
                response = await client.post(
                    f"http://127.0.0.1:{port}/api/v1/probe/items",
                    json={"n": 2 * n},
                    headers=headers,
                )
                if response.status_code == 201:
                    done += 1

        await asyncio.gather(*(one(i) for i in range(concurrency)))
    return done


class Subscriber:
    """One SSE client of channel ``probe``: follows the stream, reconnects with Last-Event-ID
    to the next live API process when its connection dies."""

    def __init__(self, ports: Sequence[int], home: int, headers: dict[str, str]) -> None:
        self.ports = list(ports)
        self.home = home
        self.headers = headers
        self.start: int | None = None
        self.positions: list[int] = []
        self.reconnects = 0
        self.stop = asyncio.Event()

    @property
    def last(self) -> int | None:
        return self.positions[-1] if self.positions else self.start

    async def run(self) -> None:
        attempt = 0
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client:
            while not self.stop.is_set():
                port = self.ports[(self.ports.index(self.home) + attempt) % len(self.ports)]
                headers = dict(self.headers)
                if self.last is not None:
                    headers["Last-Event-ID"] = str(self.last)
                with contextlib.suppress(httpx.HTTPError, TimeoutError):
                    await self._follow(client, port, headers)
                if not self.stop.is_set():
                    attempt += 1
                    self.reconnects += 1
                    await asyncio.sleep(0.2)

    async def _follow(self, client: httpx.AsyncClient, port: int, headers: dict[str, str]) -> None:
        url = f"http://127.0.0.1:{port}/api/v1/streams/probe"
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                return
            event_id: str | None = None
            kind: str | None = None
            async for line in response.aiter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line == "":
                    if event_id is not None and kind == "probe.item.created":
                        self.positions.append(int(event_id))
                    elif event_id is not None and self.start is None:
                        self.start = int(event_id)  # the opening message: where it starts
                    event_id = kind = None


async def check_log(database_url: str) -> dict[str, int]:
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM core_event WHERE type = 'probe.item.created') AS events,
              (SELECT count(*) FROM core_event WHERE relayed_at IS NULL) AS unrelayed,
              (SELECT count(*) FROM core_event e WHERE e.type = 'probe.item.created'
                 AND NOT EXISTS (SELECT 1 FROM probe_effect p WHERE p.event_id = e.id)) AS lost,
              (SELECT count(*) FROM (SELECT event_id FROM probe_effect GROUP BY event_id
                 HAVING count(*) > 1) d) AS duplicated,
              (SELECT count(*) FROM core_dead_letter) AS dead_letters
            """
        )
        positions = [
            r["position"]
            for r in await conn.fetch(
                "SELECT position FROM core_event WHERE type = 'probe.item.created' "
                "AND position IS NOT NULL ORDER BY position"
            )
        ]
        return {**dict(row), "positions": positions}  # type: ignore[dict-item]
    finally:
        await conn.close()


async def fault_run(
    stack: Stack, ports: list[int], headers: dict[str, str], creates: int, concurrency: int
) -> dict[str, Any]:
    subscribers = [Subscriber(ports, port, headers) for port in ports for _ in range(2)]
    tasks = [asyncio.create_task(s.run()) for s in subscribers]
    await asyncio.sleep(1.5)  # every subscriber has its opening message
    acknowledged: list[str] = []
    failed = 0
    issued = 0
    victim_api = ports[1]
    killed = asyncio.Event()
    third_issued = asyncio.Event()

    async def chaos() -> None:
        await third_issued.wait()
        stack.apis[victim_api].kill()  # SIGKILL
        stack.workers[0].kill()
        killed.set()
        await asyncio.sleep(2.0)
        stack.start_api(victim_api)
        stack.workers[0] = stack.start_worker()
        await stack.wait_ready([victim_api])

    chaos_task = asyncio.create_task(chaos())
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(i: int) -> None:
            nonlocal issued, failed
            n = 0
            while issued < creates:
                issued += 1
                if issued >= creates // 3:
                    third_issued.set()
                n += 1
                port = ports[(i + n) % len(ports)]
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/api/v1/probe/items",
                        json={"n": 2 * n},
                        headers=headers,
                    )
                except httpx.HTTPError:
                    failed += 1  # the killed process: the client would retry elsewhere
                    continue
                if response.status_code == 201:
                    acknowledged.append(response.json()["event_id"])
                else:
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(concurrency)))
    await chaos_task
    # settle: every event relayed and handled, every subscriber caught up
    deadline = time.monotonic() + 60
    while True:
        state = await check_log(stack.database_url)
        top = state["positions"][-1] if state["positions"] else 0
        caught_up = all(s.last is not None and s.last >= top for s in subscribers)
        if (state["lost"] == 0 and state["unrelayed"] == 0 and caught_up) or (
            time.monotonic() > deadline
        ):
            break
        await asyncio.sleep(0.5)
    for s in subscribers:
        s.stop.set()
    await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    import asyncpg

    conn = await asyncpg.connect(stack.database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        logged = {
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM core_event WHERE type = 'probe.item.created'")
        }
    finally:
        await conn.close()
    positions = state["positions"]
    subscriber_faults = 0
    for s in subscribers:
        expected = [p for p in positions if s.start is not None and p > s.start]
        if s.positions != expected:
            subscriber_faults += 1
    return {
        "creates_attempted": issued,
        "acknowledged": len(acknowledged),
        "refused_or_cut": failed,
        "acknowledged_missing_from_log": len(set(acknowledged) - logged),
        "events_logged": state["events"],
        "lost_effects": state["lost"],
        "duplicate_effects": state["duplicated"],
        "dead_letters": state["dead_letters"],
        "subscribers": len(subscribers),
        "subscribers_missing_or_out_of_order": subscriber_faults,
        "subscriber_reconnects": sum(s.reconnects for s in subscribers),
        "killed": killed.is_set(),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    database = f"crm2_scaleout_{uuid.uuid4().hex[:8]}"
    prefix = f"scaleout{uuid.uuid4().hex[:8]}"
    pg(f'CREATE DATABASE "{database}"')
    stack = Stack(database, prefix)
    try:
        await prepare(stack)
        ports = [free_port() for _ in range(3)]
        for _ in range(2):
            stack.start_worker()
        stack.start_api(ports[0])
        await stack.wait_ready(ports[:1])
        headers = await login(ports[0])
        await creates_for(ports[:1], headers, 1.0, args.concurrency)  # warm-up
        one = await creates_for(ports[:1], headers, args.seconds, args.concurrency)
        for port in ports[1:]:
            stack.start_api(port)
        await stack.wait_ready(ports)
        await creates_for(ports, headers, 1.0, args.concurrency)  # warm-up
        three = await creates_for(ports, headers, args.seconds, args.concurrency)
        throughput = {
            "seconds": args.seconds,
            "clients": args.concurrency,
            "creates_per_s_1_api": round(one / args.seconds, 1),
            "creates_per_s_3_api": round(three / args.seconds, 1),
            "scaling_1_to_3": round(three / max(one, 1), 2),
        }
        faults = await fault_run(stack, ports, headers, args.creates, args.concurrency)
        return {"throughput": throughput, "faults": faults, "cpus": os.cpu_count()}
    finally:
        stack.stop_all()
        cleanup("amqp", prefix)
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
        pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load phase")
    parser.add_argument("--creates", type=int, default=600, help="creates in the fault run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="concurrent clients (spread over the API processes)",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()
    result = asyncio.run(asyncio.wait_for(main_async(args), timeout=600))
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    faults = result["faults"]
    ok = (
        faults["killed"]
        and faults["acknowledged_missing_from_log"] == 0
        and faults["lost_effects"] == 0
        and faults["duplicate_effects"] == 0
        and faults["subscribers_missing_or_out_of_order"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
