"""How a safe request's session ends (``http.deps.get_session``): on PostgreSQL it has
no transaction, so it commits only what the route left pending; on SQLite it ends as
every other session."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.http.deps import _end_read
from crm2_core.testing import Crm2TestApp


def _count_commits(monkeypatch: pytest.MonkeyPatch) -> list[AsyncSession]:
    """The sessions committed by the test's own task (the relay runs beside it)."""
    committed: list[AsyncSession] = []
    commit = AsyncSession.commit
    task = asyncio.current_task()

    async def counted(session: AsyncSession) -> None:
        if asyncio.current_task() is task:
            committed.append(session)
        await commit(session)

    monkeypatch.setattr(AsyncSession, "commit", counted)
    return committed


async def test_a_get_commits_its_session_on_sqlite_only(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await crm2.login("admin")
    committed = _count_commits(monkeypatch)
    response = await crm2.client.get("/api/v1/auth/users", headers=admin)
    assert response.status_code == 200, response.text
    assert len(committed) == (1 if crm2.context.settings.is_sqlite else 0)


async def test_a_read_session_flushes_what_a_route_left_pending(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_sessions = crm2.context.read_session_factory
    assert read_sessions is not None
    committed = _count_commits(monkeypatch)
    clean = read_sessions()
    await clean.execute(select(col(User.id)).limit(1))
    await _end_read(clean, None)
    assert committed == [] and not clean.in_transaction()

    email = f"pending-{uuid.uuid4().hex[:8]}@example.com"
    pending = read_sessions()
    pending.add(User(email=email, password_hash="x"))
    await _end_read(pending, None)
    assert committed == [pending]

    failed = read_sessions()
    failed.add(User(email=f"x{email}", password_hash="x"))
    await _end_read(failed, RuntimeError)
    async with crm2.context.session_factory() as session:
        found = (
            (await session.execute(select(col(User.email)).where(col(User.email).contains(email))))
            .scalars()
            .all()
        )
    assert found == [email]
