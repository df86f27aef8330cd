from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import probe_plugin
import pytest
from click.testing import CliRunner, Result
from probe_plugin import ProbeEffect
from sqlalchemy import func, select

from crm2_core.bootstrap import build_app_context
from crm2_core.cli import commands, events  # noqa: F401  (registers the commands)
from crm2_core.cli.main import cli
from crm2_core.events.models import DeadLetter, EventRecord
from crm2_core.testing import TEST_JWT_SECRET, Crm2TestApp


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Poll until ``check`` holds; generous, because a loaded machine retries late."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def effects(app: Crm2TestApp, event_id: uuid.UUID | None = None) -> int:
    async with app.context.session_factory() as session:
        stmt = select(func.count()).select_from(ProbeEffect)
        if event_id is not None:
            stmt = stmt.where(ProbeEffect.event_id == event_id)
        return int((await session.execute(stmt)).scalar_one())


async def event_rows(app: Crm2TestApp) -> list[EventRecord]:
    async with app.context.session_factory() as session:
        return list(
            (await session.execute(select(EventRecord).order_by(EventRecord.sequence))).scalars()
        )


async def dead_letters(app: Crm2TestApp) -> list[DeadLetter]:
    async with app.context.session_factory() as session:
        return list((await session.execute(select(DeadLetter))).scalars())


def run_dead_letters_cli(monkeypatch: pytest.MonkeyPatch, settings: Any, *args: str) -> Result:
    """Invoke ``crm2 events dead-letters`` with the test's database and the probe plugin
    (in a thread of its own: the command runs its own event loop)."""

    def load_context():  # type: ignore[no-untyped-def]
        return build_app_context(
            settings,
            extra_plugins=(probe_plugin,),
            plugin_settings={"auth": {"jwt_secret": TEST_JWT_SECRET}},
        )

    monkeypatch.setattr(events, "load_context", load_context)
    return CliRunner().invoke(cli, ["events", "dead-letters", *args])
