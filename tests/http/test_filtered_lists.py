"""``Repository.filtered``: a list's query as a shape and values, its page statement
built once per shape, the values bound at execution."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db import pagination
from crm2_core.db.pagination import PageParams, Shaped
from crm2_core.errors import NotFound
from crm2_core.kit.filters import Condition, Filtered, at_least, contains_text, eq, where_all
from crm2_core.kit.repository import Repository
from crm2_core.kit.sorting import Sorts
from crm2_core.kit.visibility import Visibility
from crm2_core.testing import Crm2TestApp

SORTS = Sorts({"created_at": col(User.created_at)}, id_column=col(User.id), default="created_at")
# Every user owns itself: a restricted visibility sees one row.
USERS = Repository(User, NotFound, owner=col(User.id), sorts=SORTS)


def _conditions(q: str | None, since: datetime | None, active: bool | None) -> tuple[Any, ...]:
    return (
        contains_text(q, col(User.email)),
        at_least(col(User.created_at), since),
        eq(col(User.is_active), active),
    )


async def _walk(crm2: Crm2TestApp, query: Filtered | Any) -> list[tuple[uuid.UUID, str]]:
    """Every row of ``query``, two per page, on a GET's kind of session."""
    read_sessions = crm2.context.read_session_factory or crm2.context.session_factory
    found: list[tuple[uuid.UUID, str]] = []
    cursor: str | None = None
    for _ in range(20):
        async with read_sessions() as session:
            page = PageParams(limit=2, cursor=cursor)
            rows, cursor = await USERS.page_rows(session, query, page, sort="created_at")
        found += [(row.id, row.email) for row in rows]
        if cursor is None:
            return found
    raise AssertionError("pagination did not end")


async def test_a_shape_is_built_once_and_each_list_gets_its_own_values(
    crm2: Crm2TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ids: dict[str, uuid.UUID] = {}
    for i, name in enumerate(["red-1", "red-2", "red-3", "blue-1", "blue-2", "red_x", "blue-3"]):
        ids[name] = await crm2.create_user("viewer", email=f"{name}@shape.example.com")
        async with crm2.context.session_factory() as session:
            moment = start + timedelta(minutes=i)
            stmt = update(User).where(col(User.id) == ids[name]).values(created_at=moment)
            await session.execute(stmt)
            await session.commit()
    monkeypatch.setattr(pagination, "_PAGES", {})
    everyone = Visibility.system()

    red = await _walk(crm2, USERS.filtered(everyone, *_conditions("RED", start, None)))
    shapes = dict(pagination._PAGES)
    blue = await _walk(crm2, USERS.filtered(everyone, *_conditions("blue", start, True)))
    tomorrow = start + timedelta(days=1)
    late = await _walk(crm2, USERS.filtered(everyone, *_conditions("red", tomorrow, None)))

    names = {v: k for k, v in ids.items()}
    # LIKE's wildcards in the text are literal: "red_" finds only "red_x"
    underscore = await _walk(crm2, USERS.filtered(everyone, *_conditions("red_", start, None)))
    assert [names[i] for i, _ in red] == ["red-1", "red-2", "red-3", "red_x"]
    assert [names[i] for i, _ in blue] == ["blue-1", "blue-2", "blue-3"]
    assert late == [] and [names[i] for i, _ in underscore] == ["red_x"]
    # the first page and the pages after a cursor: two statements for "q, since";
    # another value of the same filters reused them, another set of filters made its own
    assert len(shapes) == 2
    assert set(shapes.items()) <= set(pagination._PAGES.items())
    assert len(pagination._PAGES) == 4


async def test_a_restricted_visibility_is_bound_per_list(crm2: Crm2TestApp) -> None:
    """The owner rule is a condition of the shape like any other: each caller's own
    owner id, never the one whose list built the statement."""
    first = await crm2.create_user("viewer", email="first@owner.example.com")
    second = await crm2.create_user("viewer", email="second@owner.example.com")
    conditions = _conditions("owner.example.com", None, True)

    as_first = await _walk(crm2, USERS.filtered(Visibility(owner_id=first), *conditions))
    as_second = await _walk(crm2, USERS.filtered(Visibility(owner_id=second), *conditions))
    as_nobody = await _walk(crm2, USERS.filtered(Visibility(owner_id=uuid.uuid4()), *conditions))
    everyone = await _walk(crm2, USERS.filtered(Visibility.system(), *conditions))

    assert [i for i, _ in as_first] == [first] and [i for i, _ in as_second] == [second]
    assert as_nobody == [] and {i for i, _ in everyone} == {first, second}


async def test_a_plain_clause_makes_an_ordinary_statement(crm2: Crm2TestApp) -> None:
    """An ``IN`` list (or any clause that is not a condition) is built with its values, as
    ``where_all`` builds it, and pages the same rows."""
    wanted = {await crm2.create_user("viewer", email=f"in-{i}@example.com") for i in range(3)}
    await crm2.create_user("viewer", email="in-other@example.com")
    query = USERS.filtered(Visibility.system(), col(User.id).in_(wanted), eq(col(User.email), None))

    assert query.shaped() is None
    assert {i for i, _ in await _walk(crm2, query)} == wanted


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=["pg", "sqlite"])
def test_the_shape_is_the_sql_where_all_writes(dialect: Any) -> None:
    """With its values bound, a shaped query is the statement ``where_all`` makes of the
    same conditions on ``visible_rows``: only the parameters' names differ."""
    since = datetime(2030, 1, 1, tzinfo=UTC)
    owner = uuid.uuid4()
    for visibility in (Visibility.system(), Visibility(owner_id=owner)):
        conditions = _conditions("a%b", since, None)  # a bool compares as a literal
        query = USERS.filtered(visibility, *conditions)
        shaped = query.shaped()
        assert isinstance(shaped, Shaped)
        built = where_all(USERS.visible_rows(visibility), *conditions)
        if visibility.unrestricted:  # ``visible_rows`` says ``WHERE true`` first
            built = where_all(USERS.base(columns=True), *conditions)
        expected = built.compile(dialect=dialect)
        compiled = shaped.build().compile(dialect=dialect)
        params = compiled.construct_params(params=dict(shaped.values))
        assert _numbered(str(compiled)) == _numbered(str(expected))
        assert list(params.values()) == list(expected.params.values())
        assert next(iter(params.values())) == (owner if visibility.owner_id else "%a\\%b%")


def _numbered(sql: str) -> str:
    """``sql`` with each parameter's name replaced by its position."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"%({len(names)})s"

    return re.sub(r"%\((\w+)\)s", number, sql)


def _in_domain(columns: tuple[Any, ...], right: Any) -> Any:
    return columns[0].endswith(right)


async def test_a_plugins_own_condition_is_shaped_like_the_kits(crm2: Crm2TestApp) -> None:
    """``Condition(operator, columns, value)``: the operator gets the value, or in the
    shaped statement the bind parameter standing for it."""
    ours = {await crm2.create_user("viewer", email=f"own-{i}@ours.example.org") for i in range(3)}
    theirs = await crm2.create_user("viewer", email="own@theirs.example.org")

    def domain(name: str) -> Condition:
        return Condition(_in_domain, (col(User.email),), f"@{name}.example.org")

    query = USERS.filtered(Visibility.system(), domain("ours"))
    assert query.shaped() is not None
    assert {i for i, _ in await _walk(crm2, query)} == ours
    assert [
        i for i, _ in await _walk(crm2, USERS.filtered(Visibility.system(), domain("theirs")))
    ] == [theirs]


def test_a_condition_is_a_clause_anywhere_sqlalchemy_takes_one() -> None:
    condition = eq(col(User.email), "a@example.com")
    assert isinstance(condition, Condition)
    assert str(USERS.base().where(condition)) == str(
        USERS.base().where(col(User.email) == "a@example.com")
    )
    assert eq(col(User.email), None) is None and contains_text("", col(User.email)) is None
