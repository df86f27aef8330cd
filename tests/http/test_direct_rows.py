"""``select_rows``: a list page's plain rows straight through the driver on a read session."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import Row, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.direct import select_rows
from crm2_core.db.pagination import PageParams
from crm2_core.errors import NotFound
from crm2_core.kit.repository import Repository
from crm2_core.kit.sorting import Sorts
from crm2_core.kit.visibility import Visibility
from crm2_core.testing import Crm2TestApp


def _users(*emails: str) -> Any:
    return (
        select(col(User.id), col(User.email), col(User.created_at), col(User.version))
        .where(col(User.email).in_(emails) if len(emails) > 1 else col(User.email) == emails[0])
        .order_by(col(User.email))
    )


class _Executions:
    """The statements SQLAlchemy's ORM session executed (``AsyncSession.execute``) for the
    test's own task: the relay and the streams' log poll run beside it in other tasks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[Any] = []
        execute = AsyncSession.execute
        task = asyncio.current_task()

        async def counted(session: AsyncSession, statement: Any, *args: Any, **kw: Any) -> Any:
            if asyncio.current_task() is task:
                self.statements.append(statement)
            return await execute(session, statement, *args, **kw)

        monkeypatch.setattr(AsyncSession, "execute", counted)


async def test_rows_are_what_sqlalchemy_answers(crm2: Crm2TestApp) -> None:
    for email in ("a@example.com", "b@example.com"):
        await crm2.create_user("viewer", email=email)
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    async with read_sessions() as session:
        expected = (await session.execute(_users("a@example.com"))).all()
        got = await select_rows(session, _users("a@example.com"))
        other = await select_rows(session, _users("b@example.com"))  # same shape, new value
        both = await select_rows(session, _users("a@example.com", "b@example.com"))  # IN

    assert [tuple(r) for r in got] == [tuple(r) for r in expected] and len(got) == 1
    assert all(isinstance(r, Row) for r in got + other + both)
    assert got[0]._fields == expected[0]._fields
    assert got[0].email == "a@example.com" and other[0].email == "b@example.com"
    assert got[0]._mapping["version"] == expected[0].version
    assert got[0].created_at.utcoffset() == UTC.utcoffset(None)  # UtcDateTime applied
    assert [r.email for r in both] == ["a@example.com", "b@example.com"]


async def test_postgresql_read_sessions_bypass_sqlalchemy_execution(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Straight through asyncpg outside a transaction only: inside one (a write session),
    through SQLAlchemy, which began it; an expanding IN or a computed column too."""
    await crm2.create_user("viewer", email="direct@example.com")
    executions = _Executions(monkeypatch)
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    async with read_sessions() as session:
        assert len(await select_rows(session, _users("direct@example.com"))) == 1
    direct = len(executions.statements)
    async with read_sessions() as session:
        await select_rows(session, _users("direct@example.com", "x@example.com"))
        await select_rows(session, select(func.count()).select_from(User))
    computed = len(executions.statements) - direct
    async with crm2.context.session_factory() as session:
        assert len(await select_rows(session, _users("direct@example.com"))) == 1

    on_postgresql = crm2.context.engine.dialect.driver == "asyncpg"
    assert direct == (0 if on_postgresql else 1)
    assert computed == 2
    assert len(executions.statements) == direct + computed + 1


async def test_a_read_session_holds_no_connection_for_its_rows(crm2: Crm2TestApp) -> None:
    """On PostgreSQL a read session's statement runs on a pool connection given back at
    once: the session begins nothing and holds nothing while the page is built. A
    session already holding a connection (or SQLite's, which begin) keeps running its
    statements on it."""
    await crm2.create_user("viewer", email="pooled@example.com")
    task = asyncio.current_task()
    pool_events: list[tuple[str, int]] = []

    def seen(name: str) -> Any:
        def record(dbapi_connection: Any, *_: Any) -> None:
            if asyncio.current_task() is task:
                pool_events.append((name, id(dbapi_connection)))

        return record

    pool = crm2.context.engine.sync_engine.pool
    listeners = [(pool, name, seen(name)) for name in ("checkout", "checkin")]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    try:
        async with read_sessions() as session:
            rows = await select_rows(session, _users("pooled@example.com"))
            began = session.in_transaction()
            returned = list(pool_events)
            await session.execute(select(func.count()).select_from(User))  # takes one now
            again = await select_rows(session, _users("pooled@example.com"))
            after = list(pool_events)
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)

    assert [r.email for r in rows + again] == ["pooled@example.com"] * 2
    if crm2.context.engine.dialect.driver == "asyncpg":
        assert not began
        assert [name for name, _ in returned] == ["checkout", "checkin"]
        assert returned[0][1] == returned[1][1]
        assert [name for name, _ in after[2:]] == ["checkout"]  # the session's own
    else:
        assert began and [name for name, _ in returned] == ["checkout"]
        assert after == returned


async def test_a_cancelled_read_gives_its_pool_connection_back(crm2: Crm2TestApp) -> None:
    """A request cancelled during its list statement (the client went away) returns the
    connection it took for it, and the pool's connections still answer."""
    if crm2.context.engine.dialect.driver != "asyncpg":
        pytest.skip("the pooled round trip is PostgreSQL's")
    read_sessions = crm2.context.read_session_factory
    assert read_sessions is not None
    pool_events: list[str] = []
    started = asyncio.Event()

    async def slow_read() -> None:
        async with read_sessions() as session:
            started.set()
            await select_rows(session, select(func.pg_sleep(30).label("slept")))

    reader = asyncio.create_task(slow_read())

    def seen(name: str) -> Any:
        def record(*_: Any) -> None:
            if asyncio.current_task() is reader:
                pool_events.append(name)

        return record

    pool = crm2.context.engine.sync_engine.pool
    listeners = [(name, seen(name)) for name in ("checkout", "checkin")]
    for name, listener in listeners:
        event.listen(pool, name, listener)
    try:
        await started.wait()
        await asyncio.sleep(0.3)  # inside pg_sleep
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
    finally:
        for name, listener in listeners:
            event.remove(pool, name, listener)

    assert pool_events == ["checkout", "checkin"]
    for _ in range(pool.size() + 1):  # each pooled connection in turn answers
        async with read_sessions() as session:
            assert len(await select_rows(session, _users("nobody@example.com"))) == 0


async def test_statement_listeners_see_every_statement(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine with statement listeners (tracing, a test capturing SQL) runs it through
    SQLAlchemy, so they see it."""
    await crm2.create_user("viewer", email="seen@example.com")
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "auth_user" in statement:
            seen.append(statement)

    engine = crm2.context.engine.sync_engine
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with read_sessions() as session:
            rows = await select_rows(session, _users("seen@example.com"))
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert [r.email for r in rows] == ["seen@example.com"]
    assert len(seen) == 1


async def test_plain_row_pages_on_a_read_session_match_the_entity_pages(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Repository.page_rows`` on a GET's session: the same pages and cursors as
    ``page``, and on PostgreSQL none of its statements through SQLAlchemy's execution."""
    created = {await crm2.create_user("viewer", email=f"page-{i}@example.com") for i in range(5)}
    sorts = Sorts(
        {"created_at": col(User.created_at)}, id_column=col(User.id), default="-created_at"
    )
    users = Repository(User, NotFound, sorts=sorts)
    stmt = users.visible(Visibility.system()).where(col(User.email).startswith("page-"))
    walks: dict[bool, list[tuple[list[Any], str | None]]] = {True: [], False: []}
    executions: _Executions | None = None
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    for plain in (False, True):
        cursor: str | None = None
        for _ in range(10):
            if plain and executions is None:
                executions = _Executions(monkeypatch)
            async with read_sessions() as session:
                params = PageParams(limit=2, cursor=cursor)
                fetch = users.page_rows if plain else users.page
                rows, cursor = await fetch(session, stmt, params, sort="created_at")
            walks[plain].append((rows, cursor))
            if cursor is None:
                break

    assert [c for _, c in walks[True]] == [c for _, c in walks[False]]
    entities = [u for rows, _ in walks[False] for u in rows]
    plain_rows = [r for rows, _ in walks[True] for r in rows]
    assert {u.id for u in entities} == created and len(plain_rows) == 5
    assert [(r.id, r.email, r.created_at, r.version) for r in plain_rows] == [
        (u.id, u.email, u.created_at, u.version) for u in entities
    ]
    assert executions is not None
    on_postgresql = crm2.context.engine.dialect.driver == "asyncpg"
    assert len(executions.statements) == (0 if on_postgresql else len(walks[True]))


async def test_a_driver_error_is_met_by_sqlalchemy(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the driver raises, SQLAlchemy meets again (its error types, its pool's
    invalidation of a lost connection): here it answers, the failure being the fake's."""
    if crm2.context.engine.dialect.driver != "asyncpg":
        pytest.skip("the direct path is PostgreSQL's")
    import asyncpg

    await crm2.create_user("viewer", email="retry@example.com")
    failed: list[str] = []

    async def broken(_conn: Any, query: str, *_: Any, **__: Any) -> Any:
        failed.append(query)
        raise asyncpg.exceptions.InterfaceError("the driver failed")

    monkeypatch.setattr(asyncpg.Connection, "fetch", broken)
    executions = _Executions(monkeypatch)
    async with crm2.context.read_session_factory() as session:  # type: ignore[misc]
        rows = await select_rows(session, _users("retry@example.com"))

    assert [r.email for r in rows] == ["retry@example.com"]
    assert len(failed) == 1 and len(executions.statements) == 1
