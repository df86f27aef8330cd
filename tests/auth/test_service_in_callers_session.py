"""The auth service called straight (a plugin, the CLI) inside a transaction the caller
has begun already: its checks read, and count a password attempt, in that session.

Before: the checks made before a grant of ``auth:users`` or ``*`` opened sessions of
their own; on SQLite the caller's transaction held the only writer lock (every
transaction begins IMMEDIATE), so they waited for it until "database is locked".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest
from sqlalchemy import select, text

from crm2_core.auth.models import LoginFailure
from crm2_core.auth.schemas import RoleCreate, RoleUpdate, UserCreate, UserUpdate
from crm2_core.errors import Crm2Error
from crm2_core.http.etag import etag_for
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.app import TEST_PASSWORD
from crm2_hookspecs import Principal

T = TypeVar("T")


async def soon(call: Awaitable[T]) -> T:
    """``call``, or a failure well before SQLite's 30 s busy timeout would give one."""
    return await asyncio.wait_for(call, 10)


async def admin_actor(crm2: Crm2TestApp) -> Principal:
    signed_in = await crm2.user("admin")
    headers = {k.lower(): v for k, v in signed_in.headers.items()}
    return await crm2.context.authenticator.from_headers(headers)


async def test_granting_administration_inside_a_begun_transaction(crm2: Crm2TestApp) -> None:
    actor = await admin_actor(crm2)
    async with crm2.context.session_factory() as session:
        await session.execute(text("SELECT 1"))  # the caller's transaction has begun
        made = UserCreate(
            email="second@example.com",
            password="a long enough secret",
            roles=["admin"],
            current_password=TEST_PASSWORD,
        )
        user = await soon(crm2.auth.create_user(session, made, actor))
        await session.commit()
    target = await crm2.create_user("viewer", email="third@example.com")
    async with crm2.context.session_factory() as session:
        version = (await crm2.auth.get_user(session, target)).version
        promoted = UserUpdate(roles=["admin"], current_password=TEST_PASSWORD)
        await soon(crm2.auth.update_user(session, target, etag_for(version), promoted, actor))
        await crm2.auth.create_role(session, RoleCreate(name="hirer"), actor)
        role = await crm2.auth.get_role(session, "hirer")
        change = RoleUpdate(permissions=["auth:users"], current_password=TEST_PASSWORD)
        await soon(crm2.auth.update_role(session, "hirer", etag_for(role.version), change, actor))
        await session.commit()
    admin = await crm2.login()
    for made_admin in (user.id, target):
        shown = await crm2.client.get(f"/api/v1/auth/users/{made_admin}", headers=admin)
        assert shown.json()["roles"] == ["admin"]
    hirer = (await crm2.client.get("/api/v1/auth/roles/hirer", headers=admin)).json()
    assert hirer["permissions"] == ["auth:users"]


async def test_a_wrong_password_inside_a_begun_transaction_is_counted_in_it(
    crm2: Crm2TestApp,
) -> None:
    actor = await admin_actor(crm2)
    target = await crm2.create_user("viewer", email="target@example.com")
    async with crm2.context.session_factory() as session:
        version = (await crm2.auth.get_user(session, target)).version
        promoted = UserUpdate(roles=["admin"], current_password="not the password")
        with pytest.raises(Crm2Error) as raised:
            await soon(crm2.auth.update_user(session, target, etag_for(version), promoted, actor))
        assert raised.value.status == 403
        await session.commit()  # as /login's route does: keep the count
    async with crm2.context.session_factory() as session:
        failures = (await session.execute(select(LoginFailure))).scalars().all()
    assert [f.failures for f in failures] == [1]
