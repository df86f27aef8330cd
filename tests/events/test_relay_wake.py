"""The relay's wake-up after a commit is bound to its application, not to the process."""

from __future__ import annotations

import asyncio
import uuid

import probe_plugin
import pytest
from helpers import event_rows, wait_for
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from crm2_core.events.bus import PENDING_FLAG
from crm2_core.events.relay import hold_lock
from crm2_core.testing import TestDatabase
from crm2_core.testing.pytest_plugin import AppFactory


async def _commit_with_events(factory: async_sessionmaker) -> None:  # type: ignore[type-arg]
    async with factory() as session:
        session.sync_session.info[PENDING_FLAG] = True  # what publish() sets
        await session.commit()


async def test_a_commit_wakes_only_its_own_applications_relay(
    crm2_app_factory: AppFactory,
) -> None:
    one, other = await crm2_app_factory(), await crm2_app_factory()
    woken: list[str] = []
    one.context.events.wake = lambda: woken.append("one")  # type: ignore[method-assign]
    other.context.events.wake = lambda: woken.append("other")  # type: ignore[method-assign]

    await _commit_with_events(one.context.session_factory)
    await _commit_with_events(other.context.session_factory)
    # a session of neither application (a script, another library) wakes nobody
    await _commit_with_events(async_sessionmaker(one.context.engine))

    assert woken == ["one", "other"]


async def test_a_closed_applications_bus_stops_listening(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory()
    woken: list[str] = []
    app.context.events.wake = lambda: woken.append("woken")  # type: ignore[method-assign]

    app.context.events.detach()
    await _commit_with_events(app.context.session_factory)

    assert woken == []


async def test_a_rollback_forgets_the_pending_events(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory()
    woken: list[str] = []
    app.context.events.wake = lambda: woken.append("woken")  # type: ignore[method-assign]

    async with app.context.session_factory() as session:
        await session.execute(text("SELECT 1"))  # a transaction to roll back
        session.sync_session.info[PENDING_FLAG] = True
        await session.rollback()
        await session.commit()  # nothing was written since: no wake-up

    assert woken == []


async def test_a_relay_that_found_the_lock_taken_looks_again_soon(
    crm2_app_factory: AppFactory, crm2_database: TestDatabase
) -> None:
    """Woken by a commit while another process's relay holds the lock (that one may have
    read the log before the commit), the relay looks again within moments, not on its
    next poll (made 30 s here)."""
    if crm2_database.backend != "postgresql":
        pytest.skip("the relay lock: PostgreSQL only (SQLite serialises writers anyway)")
    app = await crm2_app_factory(extra_plugins=(probe_plugin,), relay_interval_seconds=30)
    headers = await app.login("agent")
    async with app.context.session_factory() as other_relay:
        await hold_lock(other_relay)
        response = await app.client.post("/api/v1/probe/items", json={"n": 1}, headers=headers)
        assert response.status_code == 201, response.text
        event_id = uuid.UUID(response.json()["event_id"])
        await asyncio.sleep(0.3)  # this relay is woken, finds the lock taken
        await other_relay.rollback()

    async def relayed() -> bool:
        return any(r.id == event_id and r.position is not None for r in await event_rows(app))

    await wait_for(relayed, within=5)
