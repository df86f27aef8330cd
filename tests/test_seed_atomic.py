"""``crm2 seed NAME`` loads a data set whole or not at all (``crm2_core.cli.seeding``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.cli.seeding import load_seed
from crm2_core.kit.owners import create_user
from crm2_core.testing.pytest_plugin import AppFactory
from crm2_hookspecs import PluginManifest, hookimpl

PASSWORD = "correct horse battery staple"


class Staff:
    """Seeds two users, committed by themselves, before any other part."""

    manifest = PluginManifest(name="staff", title="Staff")

    @hookimpl
    def crm2_seed(self, name: str, context: Any) -> Awaitable[None] | None:
        return self._load(context) if name == "tiny" else None

    async def _load(self, context: Any) -> None:
        for i in (1, 2):
            async with context.session_factory() as session:
                await create_user(
                    context, session, email=f"staff{i}@example.com", password=PASSWORD
                )
                await session.commit()


class Clients:
    """Seeds rows in one session; row ``fail_at`` is refused (``None``: none is)."""

    manifest = PluginManifest(name="clients", title="Clients", depends=("staff",))

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at

    @hookimpl
    def crm2_seed(self, name: str, context: Any) -> Awaitable[None] | None:
        return self._load(context) if name == "tiny" else None

    async def _load(self, context: Any) -> None:
        async with context.session_factory() as session:
            for i in range(1, 5):
                if i == self.fail_at:
                    raise RuntimeError(f"row {i} is bad")
                await create_user(
                    context, session, email=f"client{i}@example.com", password=PASSWORD
                )
            await session.commit()


async def seeded(context: Any) -> list[str]:
    async with context.session_factory() as session:
        found = await session.execute(
            select(col(User.email))
            .where(col(User.email).like("%@example.com"))
            .order_by(col(User.email))
        )
        return [e for e in found.scalars() if e.startswith(("staff", "client"))]


async def test_a_seed_whose_third_row_fails_leaves_nothing(crm2_app_factory: AppFactory) -> None:
    """The first part had committed its users, the second two of its rows: a failure at the
    third left them all, half a data set a second run then skipped as "already loaded"."""
    app = await crm2_app_factory(extra_plugins=(Staff(), Clients(fail_at=3)))
    with pytest.raises(RuntimeError, match="row 3 is bad"):
        await load_seed(app.context, "tiny")
    assert await seeded(app.context) == []
    # and the application's own sessions work as before
    async with app.context.session_factory() as session:
        await create_user(app.context, session, email="after@example.com", password=PASSWORD)
        await session.commit()


async def test_a_seed_that_succeeds_keeps_every_part(crm2_app_factory: AppFactory) -> None:
    app = await crm2_app_factory(extra_plugins=(Staff(), Clients(fail_at=None)))
    assert await load_seed(app.context, "tiny") == ["staff", "clients"]
    assert await seeded(app.context) == [
        *(f"client{i}@example.com" for i in range(1, 5)),
        "staff1@example.com",
        "staff2@example.com",
    ]
