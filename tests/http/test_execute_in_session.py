"""``execute_in_session``: a statement in the session's own transaction, straight through
asyncpg on PostgreSQL, with what ``session.execute`` would have done around it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Float, MetaData, Numeric, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from test_direct_rows import _Executions as Executions

from crm2_core.auth.models import User
from crm2_core.db import direct
from crm2_core.db.direct import execute_in_session
from crm2_core.db.together import new_row
from crm2_core.testing import Crm2TestApp


def _insert_user(email: str) -> Any:
    row = new_row(User, email=email, password_hash="not-a-hash")
    return insert(User.__table__).values(row.values)  # type: ignore[attr-defined]


def _emails(email: str) -> Any:
    # ``==``, not an expanding ``IN`` (whose SQL SQLAlchemy finishes at execution: it runs it)
    return select(col(User.email)).where(col(User.email) == email)


def _bypassed(crm2: Crm2TestApp, executions: Executions) -> None:
    """On PostgreSQL nothing went through ``AsyncSession.execute``; elsewhere all did."""
    if crm2.context.engine.dialect.name == "postgresql":
        assert executions.statements == []
    else:
        assert executions.statements


async def test_statements_run_in_the_sessions_transaction(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = crm2.context.session_factory
    executions = Executions(monkeypatch)
    async with sessions() as session:
        await execute_in_session(session, _insert_user("rolled@example.com"))
        seen = await execute_in_session(session, _emails("rolled@example.com"))
        assert seen == [("rolled@example.com",)]  # its own write, in its transaction
        await session.rollback()
    async with sessions() as session:
        assert await execute_in_session(session, _emails("rolled@example.com")) == []
        await execute_in_session(session, _insert_user("kept@example.com"))
        _bypassed(crm2, executions)
        if crm2.context.engine.dialect.name == "postgresql":  # SQLite: the write lock waits
            async with sessions() as other:  # not committed: another transaction sees nothing
                assert (await other.execute(_emails("kept@example.com"))).all() == []
        await session.commit()
    async with sessions() as other:
        assert [tuple(r) for r in (await other.execute(_emails("kept@example.com"))).all()] == [
            ("kept@example.com",)
        ]


async def test_a_write_gives_the_rows_of_its_returning(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``INSERT … RETURNING`` (a handler's claim is one): the returned rows as tuples,
    as SQLAlchemy reads them (each column's result type applied); none when it wrote
    nothing."""
    executions = Executions(monkeypatch)
    async with crm2.context.session_factory() as session:
        written = _insert_user("returned@example.com").returning(
            col(User.email), col(User.id), col(User.created_at)
        )
        rows = await execute_in_session(session, written)
        nobody = update(User).where(col(User.email) == "nobody@example.com")
        nothing = nobody.values(full_name="x").returning(col(User.id))
        missed = await execute_in_session(session, nothing)
        _bypassed(crm2, executions)
        read = select(col(User.email), col(User.id), col(User.created_at)).where(
            col(User.email) == "returned@example.com"
        )
        assert rows == [tuple(r) for r in (await session.execute(read)).all()]
        assert rows[0][0] == "returned@example.com" and rows[0][2].tzinfo is not None
        assert missed == []
        await session.rollback()


async def test_a_failed_statement_raises_what_sqlalchemy_raises(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's error, translated and wrapped as SQLAlchemy does (the problem handlers
    answer ``IntegrityError`` with a 409); the session rolls back and works on."""
    await crm2.create_user("viewer", email="taken@example.com")
    executions = Executions(monkeypatch)
    async with crm2.context.session_factory() as session:
        with pytest.raises(IntegrityError) as raised:
            await execute_in_session(session, _insert_user("taken@example.com"))
        _bypassed(crm2, executions)
        assert "auth_user" in str(raised.value) or "UNIQUE" in str(raised.value).upper()
        await session.rollback()
        counted = await execute_in_session(session, select(func.count()).select_from(User))
        assert counted[0][0] >= 1
        await execute_in_session(session, _insert_user("after@example.com"))
        await session.commit()
    async with crm2.context.session_factory() as other:
        assert (await other.execute(_emails("after@example.com"))).all()


@pytest.mark.parametrize("autoflush", [True, False])
async def test_unwritten_orm_changes_are_flushed_first_as_execute_would(
    crm2: Crm2TestApp, autoflush: bool
) -> None:
    """With autoflush (crm2's sessions have it off), pending objects are written before
    the statement; without it they are not: what ``session.execute`` sees, each time."""
    async with crm2.context.session_factory(autoflush=autoflush) as session:
        session.add(User(email="pending@example.com", password_hash="not-a-hash"))
        got = await execute_in_session(session, _emails("pending@example.com"))
        expected = (await session.execute(_emails("pending@example.com"))).all()
        assert got == [tuple(r) for r in expected]
        assert got == ([("pending@example.com",)] if autoflush else [])
        await session.rollback()


async def test_an_adapter_without_the_parts_used_leaves_it_to_sqlalchemy(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another SQLAlchemy version's adapter, missing a private part the driver path uses:
    every statement goes through ``session.execute``, with the same rows."""
    monkeypatch.setattr(direct, "_ADAPTER_PARTS", (*direct._ADAPTER_PARTS, "_not_there"))
    monkeypatch.setattr(direct, "_KNOWN_ADAPTERS", {})
    executions = Executions(monkeypatch)
    async with crm2.context.session_factory() as session:
        await execute_in_session(session, _insert_user("fallback@example.com"))
        assert await execute_in_session(session, _emails("fallback@example.com")) == [
            ("fallback@example.com",)
        ]
        await session.rollback()
    assert len(executions.statements) == 2


async def test_numeric_columns_come_back_as_sqlalchemy_gives_them(crm2: Crm2TestApp) -> None:
    """A ``Float`` or ``Numeric`` column's result processing depends on the driver's type
    code, which only a result has: a table column's declared type gives it, so such rows
    take the driver path too; a numeric expression is left to SQLAlchemy. Either way the
    values are SQLAlchemy's own (``float``, ``Decimal``)."""
    numbers = Table(
        "crm2_test_numbers",
        MetaData(),
        Column("f", Float),
        Column("fd", Float(asdecimal=True)),
        Column("n", Numeric(10, 2)),
        Column("nf", Numeric(10, 2, asdecimal=False)),
        prefixes=["TEMPORARY"],
    )
    async with crm2.context.session_factory() as session:
        await session.run_sync(lambda sync: numbers.create(sync.connection()))
        row = {"f": 1.5, "fd": 2.25, "n": Decimal("3.10"), "nf": Decimal("4.20")}
        await session.execute(insert(numbers).values(row))
        columns = select(numbers.c.f, numbers.c.fd, numbers.c.n, numbers.c.nf)
        expected = [tuple(r) for r in (await session.execute(columns)).all()]
        assert await execute_in_session(session, columns) == expected
        assert [type(v) for v in expected[0]] == [float, Decimal, Decimal, float]
        averaged = select(func.avg(numbers.c.n), func.sum(numbers.c.f))
        expected = [tuple(r) for r in (await session.execute(averaged)).all()]
        assert await execute_in_session(session, averaged) == expected
        await session.rollback()
