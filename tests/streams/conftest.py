from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "events"))

import probe_plugin
from sse_helpers import RunningServer, start_server

from crm2_core.testing import Crm2TestApp

ProbeFactory = Callable[..., Awaitable[Crm2TestApp]]
Serve = Callable[[Crm2TestApp], Awaitable[RunningServer]]


@pytest.fixture(autouse=True)
def _reset_probe() -> None:
    probe_plugin.SEE_DELAY.clear()
    probe_plugin.FAILURES.clear()
    probe_plugin.ATTEMPTS.clear()


@pytest.fixture
def probe_app(crm2_app_factory: Callable[..., Awaitable[Crm2TestApp]]) -> ProbeFactory:
    """``await probe_app(**settings)``: a test app with the probe plugin and its channels."""

    async def make(**overrides: Any) -> Crm2TestApp:
        return await crm2_app_factory(extra_plugins=(probe_plugin,), **overrides)

    return make


@pytest.fixture
async def serve(probe_app: ProbeFactory) -> AsyncIterator[Serve]:
    """``await serve(app)`` → a uvicorn server on 127.0.0.1; stopped before the apps close."""
    running: list[RunningServer] = []

    async def start(app: Crm2TestApp) -> RunningServer:
        server = await start_server(app)
        running.append(server)
        return server

    yield start
    for server in running:
        await server.stop()


@pytest.fixture
async def sse() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0)) as client:
        yield client
