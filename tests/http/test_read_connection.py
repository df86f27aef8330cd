"""``ReadConnectionDep``'s engine and ``DirectSelect``: hot reads without the ORM's cost."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.direct import DirectSelect
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
