"""A real `crm2 serve`-like process stopped with SIGTERM closes its open streams cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
from conftest import ProbeFactory
from sse_helpers import EventStream

from crm2_core.testing import TEST_JWT_SECRET, TestDatabase

SERVE = Path(__file__).parent.parent / "events" / "serve_main.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_healthy(base_url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            await asyncio.sleep(0.1)


async def test_sigterm_ends_open_streams_with_a_farewell(
    probe_app: ProbeFactory, crm2_database: TestDatabase, sse: httpx.AsyncClient
) -> None:
    app = await probe_app()  # migrates the database the server process uses
    headers = await app.login("viewer")
    port = _free_port()
    env = {
        **os.environ,
        "CRM2_ENV": "test",
        "CRM2_DATABASE_URL": crm2_database.url,
        "CRM2_PLUGINS": "probe",
        "CRM2_AUTH_JWT_SECRET": TEST_JWT_SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVE),
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        await _wait_healthy(base_url, process)
        async with sse.stream("GET", f"{base_url}/api/v1/streams/probe", headers=headers) as r:
            stream = EventStream(r)
            assert (await stream.next()).event == "connected"
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            received = await stream.collect(lambda got: False, within=10)  # to the end
            stream_ended = time.monotonic() - started
        exit_code = await asyncio.wait_for(process.wait(), 15)
        stopped = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    print(f"\nSIGTERM: stream ended after {stream_ended:.2f}s, process exited after {stopped:.2f}s")
    assert [m.json() for m in received] == [{"reason": "shutdown"}]
    assert received[0].retry == 3000
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
    assert exit_code in (0, -signal.SIGTERM)
    assert stopped < 5
