"""Cursor pagination on ``/api/v1/auth/users``: every row once, stable order, limit capped."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Row, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from crm2_core.auth.models import User
from crm2_core.db.pagination import OrderKey, PageParams, _ordering, paginate
from crm2_core.errors import NotFound
from crm2_core.kit.repository import Repository
from crm2_core.kit.sorting import Sorts
from crm2_core.kit.visibility import Visibility
from crm2_core.testing import Crm2TestApp
from crm2_core.testing.pytest_plugin import AppFactory

USERS = "/api/v1/auth/users"


async def walk(crm2: Crm2TestApp, headers: dict[str, str], limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await crm2.client.get(USERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


async def test_paging_returns_every_row_once_in_stable_order(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    created = [await crm2.create_user("viewer") for _ in range(7)]

    first_walk = await walk(crm2, admin, limit=3)
    second_walk = await walk(crm2, admin, limit=3)

    assert len(first_walk) == len(set(first_walk)) == 8  # the admin and the seven
    assert {str(user_id) for user_id in created} <= set(first_walk)
    assert first_walk == second_walk
    assert first_walk[1:] == [str(user_id) for user_id in created]  # oldest first


async def test_paging_through_equal_sort_values_falls_back_on_the_id(crm2: Crm2TestApp) -> None:
    admin = await crm2.login("admin")
    created = [await crm2.create_user("viewer") for _ in range(6)]
    same = datetime(2024, 1, 1, tzinfo=UTC)
    async with crm2.context.session_factory() as session:
        await session.execute(update(User).where(User.id.in_(created)).values(created_at=same))
        await session.commit()

    walked = await walk(crm2, admin, limit=2)

    assert len(walked) == len(set(walked)) == 7
    # the admin was created after 2024: the six tied rows come first, by id
    assert walked[:6] == sorted(str(user_id) for user_id in created)


async def test_plain_rows_page_like_objects(crm2: Crm2TestApp) -> None:
    """``scalars=False`` pages a ``select`` of columns: the same rows and cursors, as tuples."""
    for _ in range(4):
        await crm2.create_user("viewer")
    keys = [OrderKey(User.created_at, True), OrderKey(User.id, True)]
    columns = select(col(User.id), col(User.email), col(User.created_at))
    walks: dict[bool, list[tuple[list[Any], str | None]]] = {True: [], False: []}
    async with crm2.context.session_factory() as session:
        for scalars, stmt in ((True, select(User)), (False, columns)):
            cursor: str | None = None
            for _ in range(10):
                rows, cursor = await paginate(
                    session, stmt, keys, PageParams(limit=2, cursor=cursor), scalars=scalars
                )
                walks[scalars].append((rows, cursor))
                if cursor is None:
                    break

    assert [c for _, c in walks[False]] == [c for _, c in walks[True]]
    objects = [(u.id, u.email, u.created_at) for rows, _ in walks[True] for u in rows]
    assert len(objects) >= 4 and len(walks[True]) == -(-len(objects) // 2)  # pages of 2
    plain = [row for rows, _ in walks[False] for row in rows]
    assert all(isinstance(row, Row) for row in plain)
    assert [(row[0], row[1], row[2]) for row in plain] == objects


async def test_a_repositorys_plain_rows_read_like_its_entities(crm2: Crm2TestApp) -> None:
    """``Repository.page_rows``: the same page and cursors as ``page``, as plain result rows
    (no ORM objects) whose attributes are the entity's, filters and sort applied."""
    created = {await crm2.create_user("viewer") for _ in range(5)}
    sorts = Sorts(
        {"created_at": col(User.created_at)}, id_column=col(User.id), default="-created_at"
    )
    users = Repository(User, NotFound, sorts=sorts)
    stmt = users.visible(Visibility.system()).where(col(User.id).in_(created))
    walks: dict[bool, list[tuple[list[Any], str | None]]] = {True: [], False: []}
    async with crm2.context.session_factory() as session:
        for plain in (False, True):
            cursor: str | None = None
            for _ in range(10):
                params = PageParams(limit=2, cursor=cursor)
                fetch = users.page_rows if plain else users.page
                rows, cursor = await fetch(session, stmt, params, sort="created_at")
                walks[plain].append((rows, cursor))
                if cursor is None:
                    break

    assert [c for _, c in walks[True]] == [c for _, c in walks[False]]
    entities = [u for rows, _ in walks[False] for u in rows]
    plain_rows = [r for rows, _ in walks[True] for r in rows]
    assert {u.id for u in entities} == created and len(entities) == 5
    assert all(isinstance(r, tuple) and "email" in r._fields for r in plain_rows)
    assert [(r.id, r.email, r.created_at, r.version) for r in plain_rows] == [
        (u.id, u.email, u.created_at, u.version) for u in entities
    ]


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=["pg", "sqlite"])
def test_keys_in_one_direction_are_one_row_value_comparison(dialect: object) -> None:
    """An index range condition on PostgreSQL, so a deep page costs what page 1 does."""
    moment, ident = datetime(2024, 1, 1, tzinfo=UTC), uuid.uuid4()

    descending = [OrderKey(User.created_at, True), OrderKey(User.id, True)]
    ascending = [OrderKey(User.created_at), OrderKey(User.id)]
    down = str(_ordering(tuple(descending)).after([moment, ident])[0].compile(dialect=dialect))
    up = str(_ordering(tuple(ascending)).after([moment, ident])[0].compile(dialect=dialect))

    assert down.startswith("(auth_user.created_at, auth_user.id) < (")
    assert up.startswith("(auth_user.created_at, auth_user.id) > (")
    assert " OR " not in down + up


def test_a_declared_sort_builds_its_ordering_sql_once() -> None:
    """Every page of a declared sort gets the same key objects, so ``paginate`` finds the
    ordering's ORDER BY, row-value side and cursor scope it built for the first page."""
    sorts = Sorts({"created_at": User.created_at}, id_column=User.id, default="-created_at")
    first, again = sorts.keys(), sorts.keys("-created_at")
    assert first == again and all(a is b for a, b in zip(first, again, strict=True))
    ordering = _ordering(tuple(first))
    assert _ordering(tuple(again)) is ordering
    assert ordering.scope == "auth_user.created_at:desc,auth_user.id:desc"
    assert _ordering(tuple(sorts.keys("created_at"))) is not ordering


def test_the_keyset_clause_is_built_once_per_ordering_with_the_values_as_parameters() -> None:
    """Each page of a list reuses its ordering's clause; only the parameters change."""
    ordering = _ordering((OrderKey(User.created_at, True), OrderKey(User.id, True)))
    first, second = uuid.uuid4(), uuid.uuid4()
    moment = datetime(2024, 1, 1, tzinfo=UTC)

    clause, params = ordering.after([moment, first])
    again, other = ordering.after([moment, second])

    assert again is clause
    assert params == {"crm2_after_0": moment, "crm2_after_1": first}
    assert other == {"crm2_after_0": moment, "crm2_after_1": second}


def test_mixed_directions_keep_the_or_expansion() -> None:
    keys = [OrderKey(User.created_at, True), OrderKey(User.id)]

    sql = str(
        _ordering(tuple(keys)).after([datetime(2024, 1, 1, tzinfo=UTC), uuid.uuid4()])[0].compile()
    )

    assert " OR " in sql


async def test_limit_above_the_maximum_is_capped(crm2_app_factory: AppFactory) -> None:
    crm2 = await crm2_app_factory(page_max_limit=2)
    admin = await crm2.login("admin")
    for _ in range(2):
        await crm2.create_user("viewer")

    response = await crm2.client.get(USERS, params={"limit": 500}, headers=admin)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 2
    assert response.json()["next_cursor"] is not None


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _b64("not json"),
        _b64('{"a": 1}'),
        _b64("[1, 2, 3]"),
        _b64('[1, "x"]'),
        _b64(f'[{{"u": 5}}, {{"u": "{uuid.uuid4()}"}}]'),
        _b64(f'[{{"t": "yesterday"}}, {{"u": "{uuid.uuid4()}"}}]'),
        _b64('[{"t": "2024-01-01T00:00:00+00:00"}, {"u": "not-a-uuid"}]'),
        _b64(f'[{{"t": "2024-01-01T00:00:00"}}, {{"u": "{uuid.uuid4()}"}}]'),
    ],
    ids=[
        "garbage",
        "not-json",
        "object",
        "too-wide",
        "wrong-types",
        "bad-tag-value",
        "bad-date",
        "bad-uuid",
        "naive-date",
    ],
)
async def test_cursor_the_server_did_not_issue_is_400_problem(
    crm2: Crm2TestApp, cursor: str
) -> None:
    admin = await crm2.login("admin")

    response = await crm2.client.get(USERS, params={"cursor": cursor}, headers=admin)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:crm2:problem:invalid-cursor"


def test_a_page_of_dicts_is_validated_and_written_as_a_page_of_models() -> None:
    """``page_response`` takes a list's rows as the response model's fields (one
    validation for the page): the same bytes as models, the same refusal of bad ones."""
    from decimal import Decimal

    from pydantic import ValidationError

    from crm2_core.http.pagination import page_response
    from crm2_core.money import Amount
    from crm2_core.schemas import ResponseModel

    class Shown(ResponseModel):
        id: uuid.UUID
        at: datetime
        value: Amount

    rows = [
        {"id": uuid.uuid4(), "at": datetime(2026, 1, 2, tzinfo=UTC), "value": Decimal("1.50")}
        for _ in range(3)
    ]
    as_dicts = page_response(Shown, rows, "next").body
    assert as_dicts == page_response(Shown, [Shown.model_validate(r) for r in rows], "next").body
    assert b'"value":"1.50"' in as_dicts
    with pytest.raises(ValidationError):
        page_response(Shown, [{**rows[0], "value": 1.5}], None)


def test_a_page_of_asyncpg_uuids_is_written_as_a_page_of_uuid_uuids() -> None:
    """asyncpg's own UUID class takes the serialiser that writes UUIDs through ``str``:
    the bytes are pydantic's, for every place a UUID can be (a field, an optional one,
    a list of them, a nested model). (A float keeps the model on pydantic's path: see
    test_page_json for the plain one.)"""
    from asyncpg.pgproto.pgproto import UUID as DriverUUID

    from crm2_core.http.page_json import plain_page
    from crm2_core.http.pagination import _driver_uuids, _page_adapters, page_response
    from crm2_core.schemas import ResponseModel

    class Inner(ResponseModel):
        ref: uuid.UUID

    class Shown(ResponseModel):
        title: str
        id: uuid.UUID
        other: uuid.UUID | None
        many: list[uuid.UUID]
        inner: Inner
        ratio: float = 0.5

    def rows(make: Any) -> list[dict[str, Any]]:
        ids = [uuid.UUID(int=(n * 7919 + 1) << 96) for n in range(4)]
        return [
            {"title": "t", "id": make(i), "other": None if n else make(i), "many": [make(i)] * 2,
             "inner": {"ref": make(i)}}
            for n, i in enumerate(ids)
        ]  # fmt: skip

    class Marked(uuid.UUID):  # written through ``str`` or not: it shows in the bytes
        def __str__(self) -> str:
            return "0" * 8 + super().__str__()[8:]

    driver, plain = rows(lambda u: DriverUUID(str(u))), rows(lambda u: u)
    adapters = _page_adapters(Shown)
    assert type(driver[0]["id"]) is DriverUUID
    assert _driver_uuids(adapters, driver) and not _driver_uuids(adapters, plain)
    assert not _driver_uuids(adapters, []) and not _driver_uuids(adapters, [Shown(**plain[0])])
    written = page_response(Shown, driver, "next").body
    assert written == page_response(Shown, plain, "next").body
    assert written == adapters.plain.dump_json(
        adapters.plain.validate_python({"items": plain, "next_cursor": "next"})
    )
    assert str(uuid.UUID(int=1 << 96)).encode() in written
    assert plain_page(Shown) is None
    assert not _driver_uuids(adapters, rows(lambda u: Marked(str(u))))  # asyncpg's class only
    text = adapters.uuids_as_text
    page = {"items": rows(lambda u: Marked(str(u))), "next_cursor": None}
    marked = text.dump_json(text.validate_python(page))
    assert marked.count(b'"00000000-') == 4 + 1 + 4 * 2  # each id, one other, each many
    assert b'"ref":"00000000-' not in marked  # a nested model keeps its own serialiser


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=["pg", "sqlite"])
def test_visible_rows_is_the_statement_page_rows_would_make_of_visible(dialect: Any) -> None:
    """A list built on ``visible_rows`` already selects the table's columns: ``page_rows``
    keeps it as it is, and the SQL is the one it makes by swapping ``visible``'s."""
    sorts = Sorts({"email": User.email}, id_column=User.id, default="email")
    users = Repository(User, NotFound, owner=col(User.id), sorts=sorts)
    columns = tuple(User.__table__.columns)  # type: ignore[attr-defined]
    for visibility in (Visibility.system(), Visibility(owner_id=uuid.uuid4())):
        rows = users.visible_rows(visibility).where(col(User.email) == "a@example.com")
        swapped = users.visible(visibility).where(col(User.email) == "a@example.com")
        swapped = swapped.with_only_columns(*columns)
        assert str(rows.compile(dialect=dialect)) == str(swapped.compile(dialect=dialect))
        assert tuple(rows.selected_columns) == columns
    assert users.base() is users.base() and users.base(columns=True) is not users.base()
