"""Keyset pagination over nullable sort columns: every row once, NULL greater than any value.

The kit reads nullability from the declared column, so nothing here says "nullable":
a probe table with nullable columns is paged with limit 1 and 2, both directions,
on each database (``--crm2-db sqlite,postgresql``), and every walk must return
every row exactly once in the documented order — NULLs last ascending, first
descending, ties by the id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

import pytest
from sqlalchemy import Column, Date, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from crm2_core.auth.models import User
from crm2_core.db.pagination import (
    OrderKey,
    PageParams,
    _check_values,
    _ordering,
    cursor_scope,
    decode_cursor,
    encode_cursor,
    paginate,
)
from crm2_core.errors import InvalidCursor
from crm2_core.testing.databases import TestDatabase

_meta = MetaData()
PROBE = Table(
    "probe_nullsort",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("due", Date, nullable=True),
    Column("rank", Integer, nullable=True),
    Column("name", String(20), nullable=False),
)

D1, D2, D3 = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
# (id, due, rank): NULLs among values and ties, ids not in value order.
ROWS: list[tuple[int, date | None, int | None]] = [
    (7, D2, 1),
    (3, None, 2),
    (9, D1, None),
    (1, D2, None),
    (5, None, None),
    (2, D3, 1),
    (8, None, 1),
    (4, D1, 2),
    (6, D2, 1),
]


def _rank(value: Any, descending: bool) -> tuple[int, Any]:
    """Sort key with NULL greater than every value, flipped for a descending key."""
    if value is None:
        return (0, 0) if descending else (1, 0)
    if isinstance(value, date):
        value = value.toordinal()
    return (1, -value) if descending else (0, value)


def expected(columns: Sequence[tuple[int, bool]]) -> list[int]:
    """The ids in the documented order: (index into the row, descending) per key."""
    return [
        row[0] for row in sorted(ROWS, key=lambda r: [_rank(r[i], desc) for i, desc in columns])
    ]


ORDERINGS: dict[str, tuple[list[OrderKey], list[tuple[int, bool]]]] = {
    "due": ([OrderKey(PROBE.c.due), OrderKey(PROBE.c.id)], [(1, False), (0, False)]),
    "-due": ([OrderKey(PROBE.c.due, True), OrderKey(PROBE.c.id, True)], [(1, True), (0, True)]),
    # two nullable keys: NULLs inside a tie of the first key (the row-value path and its extras)
    "due,rank": (
        [OrderKey(PROBE.c.due), OrderKey(PROBE.c.rank), OrderKey(PROBE.c.id)],
        [(1, False), (2, False), (0, False)],
    ),
    "-due,-rank": (
        [OrderKey(PROBE.c.due, True), OrderKey(PROBE.c.rank, True), OrderKey(PROBE.c.id, True)],
        [(1, True), (2, True), (0, True)],
    ),
    # mixed directions: the OR-expansion
    "-due,rank": (
        [OrderKey(PROBE.c.due, True), OrderKey(PROBE.c.rank), OrderKey(PROBE.c.id)],
        [(1, True), (2, False), (0, False)],
    ),
}


async def _walk(engine: AsyncEngine, keys: list[OrderKey], limit: int) -> list[int]:
    ids: list[int] = []
    cursor: str | None = None
    async with AsyncSession(engine) as session:
        for _ in range(len(ROWS) + 2):
            rows, cursor = await paginate(
                session, select(PROBE), keys, PageParams(limit, cursor), scalars=False
            )
            assert len(rows) <= limit
            ids.extend(row.id for row in rows)
            if cursor is None:
                return ids
            # the cursor the server just issued decodes and passes the value check
            _check_values(keys, decode_cursor(cursor, cursor_scope(keys), len(keys)))
    raise AssertionError("pagination did not end")


async def test_nullable_sorts_page_every_row_once_in_order(
    crm2_fresh_database: TestDatabase,
) -> None:
    engine = create_async_engine(crm2_fresh_database.url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_meta.create_all)
            await conn.execute(
                PROBE.insert(),
                [{"id": i, "due": d, "rank": r, "name": f"n{i}"} for i, d, r in ROWS],
            )
        for label, (keys, columns) in ORDERINGS.items():
            for limit in (1, 2, 50):
                walked = await _walk(engine, keys, limit)
                assert walked == expected(columns), (label, limit)
        # the documented order, spelled out for the plain case
        assert expected(ORDERINGS["due"][1]) == [4, 9, 1, 6, 7, 2, 3, 5, 8]
        assert expected(ORDERINGS["-due"][1]) == [8, 5, 3, 2, 7, 6, 1, 9, 4]
    finally:
        await engine.dispose()


DIALECTS = [cast(Any, postgresql).dialect(), cast(Any, sqlite).dialect()]


def _compiled(clause: Any, dialect: Any) -> str:
    return str(clause.compile(dialect=dialect))


@pytest.mark.parametrize("dialect", DIALECTS, ids=["pg", "sqlite"])
def test_a_not_null_column_keeps_its_sql(dialect: Any) -> None:
    """No NULLS clause and one row-value comparison: the index range stays."""
    keys = [OrderKey(User.created_at, True), OrderKey(User.id, True)]
    order = ", ".join(_compiled(k.ordering(), dialect) for k in keys)
    after = _compiled(_ordering(tuple(keys)).after([date(2024, 1, 1), uuid.uuid4()])[0], dialect)

    assert order == "auth_user.created_at DESC, auth_user.id DESC"
    assert after.startswith("(auth_user.created_at, auth_user.id) < (")
    assert " OR " not in after and "NULL" not in after
    assert cursor_scope(keys) == "auth_user.created_at:desc,auth_user.id:desc"


@pytest.mark.parametrize("dialect", DIALECTS, ids=["pg", "sqlite"])
def test_a_nullable_column_orders_nulls_as_greatest(dialect: Any) -> None:
    up, down = ORDERINGS["due"][0], ORDERINGS["-due"][0]

    assert _compiled(up[0].ordering(), dialect) == "probe_nullsort.due ASC NULLS LAST"
    assert _compiled(down[0].ordering(), dialect) == "probe_nullsort.due DESC NULLS FIRST"
    assert _compiled(up[1].ordering(), dialect) == "probe_nullsort.id ASC"
    # descending from a value: the row-value comparison alone (NULLs came before)
    assert " OR " not in _compiled(_ordering(tuple(down)).after([D1, 4])[0], dialect)
    # ascending from a value: the NULLs that follow are added
    assert _compiled(_ordering(tuple(up)).after([D1, 4])[0], dialect).endswith(
        "OR probe_nullsort.due IS NULL"
    )
    # the scope names the NULL placement
    assert cursor_scope(up).startswith("probe_nullsort.due:asc:nulls-last,")
    assert cursor_scope(down).startswith("probe_nullsort.due:desc:nulls-first,")


def test_a_cursor_on_a_null_round_trips() -> None:
    keys = ORDERINGS["due"][0]
    scope = cursor_scope(keys)

    values = decode_cursor(encode_cursor([None, 5], scope), scope, 2)

    assert values == [None, 5]
    _check_values(keys, values)


@pytest.mark.parametrize(
    "keys",
    [
        [OrderKey(PROBE.c.name), OrderKey(PROBE.c.id)],
        [OrderKey(PROBE.c.due), OrderKey(PROBE.c.id)],  # the id is never NULL
    ],
    ids=["not-null-column", "id"],
)
def test_null_for_a_not_null_column_is_refused(keys: list[OrderKey]) -> None:
    values: list[Any] = [None, 1] if keys[0].column is PROBE.c.name else [D1, None]
    with pytest.raises(InvalidCursor):
        _check_values(keys, values)


def test_nullable_can_be_declared_for_an_expression() -> None:
    forced = OrderKey(PROBE.c.name, nullable=True)

    assert forced.may_be_null and not OrderKey(PROBE.c.name).may_be_null
    assert (
        OrderKey(PROBE.c.due).may_be_null and not OrderKey(PROBE.c.due, nullable=False).may_be_null
    )
    _check_values([forced, OrderKey(PROBE.c.id)], [None, 1])
