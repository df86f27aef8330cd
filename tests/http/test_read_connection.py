"""``http.deps.read_connection`` and ``DirectSelect``: hot reads without the ORM's cost."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, text
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.direct import DirectSelect, ReadConnection
from crm2_core.testing import Crm2TestApp

_USER = select(col(User.id), col(User.email), col(User.created_at)).where(
    col(User.email) == bindparam("email")
)


async def test_direct_select_answers_what_sqlalchemy_answers(crm2: Crm2TestApp) -> None:
    await crm2.create_user("viewer", email="direct@example.com")
    engine = crm2.context.read_engine
    assert engine is not None
    async with engine.connect() as connection:
        expected = [
            tuple(row)
            for row in (await connection.execute(_USER, {"email": "direct@example.com"})).all()
        ]
        got = await DirectSelect(_USER).rows(connection, {"email": "direct@example.com"})
        none = await DirectSelect(_USER).rows(connection, {"email": "nobody@example.com"})

    assert got == expected
    assert len(got) == 1
    assert got[0][2].tzinfo is not None  # the column's UtcDateTime processing applied
    assert got[0][2].utcoffset() == UTC.utcoffset(None)
    assert none == []


async def test_direct_select_bypasses_sqlalchemy_execution_on_postgresql(
    crm2: Crm2TestApp,
) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "auth_user" in statement:  # not the scheduler's or relay's beside it
            statements.append(statement)

    engine = crm2.context.read_engine
    assert engine is not None
    async with engine.connect() as connection:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            await DirectSelect(_USER).rows(connection, {"email": "x@example.com"})
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)

    direct = crm2.context.engine.dialect.driver == "asyncpg"
    assert len(statements) == (0 if direct else 1)


async def test_a_read_connection_answers_outside_a_transaction_and_goes_back_to_the_pool(
    crm2: Crm2TestApp,
) -> None:
    """``read_connection``: on PostgreSQL the pool's driver connection
    itself (no SQLAlchemy connection, no BEGIN), given back on close; elsewhere a
    SQLAlchemy connection on the read engine. The same rows either way. (The pool's
    checked-out count moves with the relay and jobs beside the test: the connection's
    own state is what is checked.)"""
    await crm2.create_user("viewer", email="pooled@example.com")
    context = crm2.context
    engine = context.engine
    connection = await ReadConnection.open(engine, context.read_engine or engine)
    pooled, sqlalchemy = connection._pooled, connection.sqlalchemy
    try:
        got = await DirectSelect(_USER).rows(connection, {"email": "pooled@example.com"})
        if engine.dialect.driver == "asyncpg":
            assert pooled is not None and pooled.dbapi_connection is not None  # checked out
            assert connection.sqlalchemy is None
            assert not connection.driver.is_in_transaction()
        else:
            assert connection.driver is None and sqlalchemy is not None
            assert not sqlalchemy.closed
    finally:
        await connection.close()
    await connection.close()  # twice is harmless
    assert connection.driver is None and connection.sqlalchemy is None
    if pooled is not None:  # the pool's record has it back
        assert pooled.dbapi_connection is None
    else:
        assert sqlalchemy is not None and sqlalchemy.closed
    async with engine.connect() as sqlalchemy:
        expected = [
            tuple(row)
            for row in (await sqlalchemy.execute(_USER, {"email": "pooled@example.com"})).all()
        ]
    assert got == expected and len(got) == 1


async def test_a_read_connection_goes_back_to_the_pool_when_the_block_raises(
    crm2: Crm2TestApp,
) -> None:
    """(The pool's checked-out count moves with the relay and jobs beside the test: the
    connection's own state is what is checked.)"""
    engine = crm2.context.engine
    with pytest.raises(LookupError):
        async with ReadConnection(engine, crm2.context.read_engine or engine) as connection:
            pooled, sqlalchemy = connection._pooled, connection.sqlalchemy
            await DirectSelect(_USER).rows(connection, {"email": "nobody@example.com"})
            raise LookupError("the route failed after its read")
    assert connection.driver is None and connection.sqlalchemy is None
    if pooled is not None:  # asyncpg: the pool's record has it back
        assert pooled.dbapi_connection is None
    else:
        assert sqlalchemy is not None and sqlalchemy.closed


async def test_auth_me_reads_through_a_pooled_connection_it_gives_back(crm2: Crm2TestApp) -> None:
    """More requests than the pool holds (with SQLite's overflow): a connection kept by
    each would leave the later ones waiting for the pool's timeout. (Counting checked-out
    connections would count the relay's and the jobs' beside the test too.)"""
    headers = await crm2.login("agent", email="me-pooled@example.com")
    pool = crm2.context.engine.sync_engine.pool

    async def ask() -> None:
        for _ in range(3 * (pool.size() + 10)):  # type: ignore[attr-defined]
            answer = await crm2.client.get("/api/v1/auth/me", headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["email"] == "me-pooled@example.com"
            assert answer.json()["roles"] == ["agent"]

    await asyncio.wait_for(ask(), 20)


async def test_a_read_connection_the_server_dropped_does_not_go_back_to_the_pool(
    crm2: Crm2TestApp,
) -> None:
    """Without a ping on checkout, a dead connection back in the pool would fail the
    next request that takes it; a lost one is dropped and the next gets a new one."""
    context = crm2.context
    engine = context.engine
    if engine.dialect.driver != "asyncpg":
        pytest.skip("the pooled driver connection is PostgreSQL's")
    connection = await ReadConnection.open(engine, context.read_engine or engine)
    lost = connection.driver
    async with engine.connect() as admin:  # the server ends that backend
        pid = lost.get_server_pid()
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(Exception):  # noqa: B017 - asyncpg's connection-lost error
        await lost.fetch("SELECT 1")
    await connection.close()
    pool = engine.sync_engine.pool
    fresh = [await ReadConnection.open(engine, engine) for _ in range(pool.size())]  # type: ignore[attr-defined]
    try:
        assert all(c.driver is not lost for c in fresh)
        assert [await c.driver.fetchval("SELECT 1") for c in fresh] == [1] * len(fresh)
    finally:
        for c in fresh:
            await c.close()
