"""``select_rows``: a list page's plain rows straight through the driver on a read session."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Row, event, func, select
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


class _Recorder:
    """The ``auth_user`` statements SQLAlchemy sends (not the scheduler's or relay's)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "auth_user" in statement:
            self.statements.append(statement)


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


async def test_postgresql_read_sessions_bypass_sqlalchemy_execution(crm2: Crm2TestApp) -> None:
    """Straight through asyncpg outside a transaction only: inside one (a write session),
    through SQLAlchemy, which began it; an expanding IN or a computed column too."""
    await crm2.create_user("viewer", email="direct@example.com")
    engine = crm2.context.engine
    recorder = _Recorder()
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    event.listen(engine.sync_engine, "before_cursor_execute", recorder)
    try:
        async with read_sessions() as session:
            assert len(await select_rows(session, _users("direct@example.com"))) == 1
        direct = len(recorder.statements)
        async with read_sessions() as session:
            await select_rows(session, _users("direct@example.com", "x@example.com"))
            await select_rows(session, select(func.count()).select_from(User))
        computed = len(recorder.statements) - direct
        async with crm2.context.session_factory() as session:
            assert len(await select_rows(session, _users("direct@example.com"))) == 1
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", recorder)

    on_postgresql = engine.dialect.driver == "asyncpg"
    assert direct == (0 if on_postgresql else 1)
    assert computed == 2
    assert len(recorder.statements) == direct + computed + 1


async def test_plain_row_pages_on_a_read_session_match_the_entity_pages(
    crm2: Crm2TestApp,
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
    engine = crm2.context.engine
    recorder = _Recorder()
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    for plain in (False, True):
        cursor: str | None = None
        for _ in range(10):
            async with read_sessions() as session:
                params = PageParams(limit=2, cursor=cursor)
                if plain:
                    event.listen(engine.sync_engine, "before_cursor_execute", recorder)
                try:
                    fetch = users.page_rows if plain else users.page
                    rows, cursor = await fetch(session, stmt, params, sort="created_at")
                finally:
                    if plain:
                        event.remove(engine.sync_engine, "before_cursor_execute", recorder)
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
    on_postgresql = engine.dialect.driver == "asyncpg"
    assert len(recorder.statements) == (0 if on_postgresql else len(walks[True]))
