"""Keyset pagination: a stable order, a capped page, and a cursor bound to its list.

A cursor is ``base64url(json([tag, [values…]]))``. ``tag`` is a digest of the
list's ordering (table, columns, directions) and of the values, so a cursor
issued for another list or another sort, or edited by hand, is a 400
``invalid-cursor`` rather than a silently wrong page. The values are checked
against the column types (an integer beyond the column, a string with a NUL,
a non-finite decimal) before they reach SQL, so no cursor makes a 500.

The tag is a digest, not a keyed signature: forging one only moves a reader to
another position in a list whose rows the query already restricts to what the
reader may see.

A nullable ordering column (known from the declared column, ``Column.nullable``)
sorts NULL as greater than every value, the same on PostgreSQL and SQLite: NULLs
come last ascending and first descending (``NULLS LAST`` / ``NULLS FIRST`` are
written out, since SQLite's default is the opposite). That is PostgreSQL's own
order, so one ascending index on ``(column, id)`` serves both directions. A
cursor on a row whose value is NULL carries JSON ``null``, and the keyset
predicate treats NULL as that greatest value. A column that is not nullable is
ordered and compared exactly as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    Numeric,
    Select,
    SmallInteger,
    String,
    Uuid,
    and_,
    bindparam,
    false,
    or_,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from crm2_core.db.direct import select_rows
from crm2_core.errors import InvalidCursor
from crm2_core.schemas import unstorable_text

DEFAULT_LIMIT = 50
_TAG_LENGTH = 16


@dataclass(frozen=True)
class PageParams:
    """What a list was asked for: at most ``limit`` rows after ``cursor``."""

    limit: int
    cursor: str | None = None


@dataclass(frozen=True)
class OrderKey:
    """One ordering column; the last key of an ordering must be unique (the id).

    ``nullable`` defaults to the column's own ``nullable`` (an expression without one
    counts as not nullable); set it for a column that can be NULL in this query only,
    such as one of an outer-joined table.
    """

    column: Any  # an ORM attribute (InstrumentedAttribute) or a Column
    descending: bool = False
    nullable: bool | None = None

    @property
    def may_be_null(self) -> bool:
        if self.nullable is not None:
            return self.nullable
        expression = getattr(self.column, "expression", self.column)
        return bool(getattr(expression, "nullable", False))

    def ordering(self) -> Any:
        """``col ASC`` / ``col DESC``; a nullable column adds NULLS LAST / NULLS FIRST."""
        if self.descending:
            return self.column.desc().nulls_first() if self.may_be_null else self.column.desc()
        return self.column.asc().nulls_last() if self.may_be_null else self.column.asc()


def sort_order(sort: str, columns: Mapping[str, Any], id_column: Any) -> list[OrderKey]:
    """``"-updated_at"`` → keys (updated_at desc, id desc): the id makes the order total.

    ``sort`` must be one of ``columns`` (optionally prefixed with ``-``); check it
    where the request is parsed so an unknown name is a 422 (``kit.Sorts`` does).
    """
    descending = sort.startswith("-")
    return [
        OrderKey(columns[sort.removeprefix("-")], descending),
        OrderKey(id_column, descending),
    ]


# -- the cursor's text ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # one object per ordering (``_ordering``): keyed by identity
class _Ordering:
    """What a list's ordering puts in every page's statement, built once per ordering."""

    keys: tuple[OrderKey, ...]
    scope: str
    order_by: tuple[Any, ...]
    row: Any  # ``tuple_(*columns)``, the left side of the keyset comparison
    # Per key, the Python type a cursor value must have (``None``: the column's type
    # cannot be paged by cursor) and, for an integer column, its bound.
    rules: tuple[tuple[type | None, int | None], ...]
    # The keyset clause per pattern of NULL cursor values, its values bind parameters.
    _afters: dict[tuple[bool, ...], Any] = field(default_factory=dict, compare=False)

    def check(self, values: Sequence[Any]) -> None:
        """A forged cursor is a 400, not a database error. NULL only for a nullable column."""
        for key, (expected, bound), value in zip(self.keys, self.rules, values, strict=True):
            if value is None:
                if key.may_be_null:
                    continue
                raise InvalidCursor("the cursor does not fit this list's ordering")
            _check_value(expected, bound, value)

    def after(self, values: Sequence[Any]) -> tuple[Any, dict[str, Any]]:
        """The rows after the cursor's ``values``: the clause and its parameters.

        The clause is built once per ordering (and per which values are NULL), with a
        bind parameter per value: building it anew for each page was a tenth of a list
        request's CPU on SQLAlchemy's expression constructors.
        """
        nulls = tuple(value is None for value in values)
        clause = self._afters.get(nulls)
        if clause is None:
            bounds = [
                None if null else bindparam(_AFTER_PARAMS[i], type_=key.column.type)
                for i, (key, null) in enumerate(zip(self.keys, nulls, strict=True))
            ]
            clause = self._afters[nulls] = _after(self.keys, bounds, self.row)
        return clause, {
            _AFTER_PARAMS[i]: value for i, value in enumerate(values) if value is not None
        }


# The keyset clause's parameter names: no list statement uses them for anything else.
_AFTER_PARAMS = tuple(f"crm2_after_{i}" for i in range(16))


@lru_cache(maxsize=512)
def _ordering(keys: tuple[OrderKey, ...]) -> _Ordering:
    # The same OrderKey objects come back for a declared sort (``kit.Sorts`` keeps them),
    # so looking them up here is a hash and an identity check per key.
    if len(keys) > len(_AFTER_PARAMS):
        raise ValueError(f"an ordering has at most {len(_AFTER_PARAMS)} keys")
    return _Ordering(
        keys,
        cursor_scope(keys),
        tuple(key.ordering() for key in keys),
        tuple_(*(key.column for key in keys)),
        tuple(_value_rule(key.column) for key in keys),
    )


def cursor_scope(keys: Sequence[OrderKey]) -> str:
    """The identity of an ordering: ``deals_deal.updated_at:desc,deals_deal.id:desc``.

    A nullable column is named with its NULL placement (``payments_payment.due_date:
    asc:nulls-last``), so a cursor issued before NULLs had a fixed place is refused.
    """
    parts = []
    for key in keys:
        table = getattr(key.column, "table", None)
        name = getattr(key.column, "key", None) or getattr(key.column, "name", "?")
        where = f"{getattr(table, 'name', '?')}.{name}"
        part = f"{where}:{'desc' if key.descending else 'asc'}"
        if key.may_be_null:
            part += ":nulls-first" if key.descending else ":nulls-last"
        parts.append(part)
    return ",".join(parts)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):  # after datetime, which is a date too
        return {"D": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("a cursor value is a scalar or one tagged value")
        ((tag, raw),) = value.items()
        if not isinstance(raw, str):
            raise ValueError("a tagged cursor value is text")
        if tag == "t":
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:  # crm2 only ever stores and issues aware times
                raise ValueError("naive datetime in cursor")
            return moment
        if tag == "D":
            return date.fromisoformat(raw)
        if tag == "u":
            return uuid.UUID(raw)
        if tag == "d":
            return Decimal(raw)
        raise ValueError(f"unknown cursor tag {tag!r}")
    if isinstance(value, list):
        raise ValueError("a cursor value is not a list")
    return value


# ``json.dumps(value, separators=(",", ":"))`` without a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode


def _tag(scope: str, body: str) -> str:
    digest = hashlib.sha256(f"crm2-cursor\n{scope}\n{body}".encode()).hexdigest()
    return digest[:_TAG_LENGTH]


def encode_cursor(values: Sequence[Any], scope: str) -> str:
    """The cursor for the row holding ``values``, in the ordering named by ``scope``."""
    body = _COMPACT_JSON([_encode_value(v) for v in values])
    # ``json.dumps([tag, values])``, the values' JSON being ``body`` already.
    raw = f'["{_tag(scope, body)}",{body}]'
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, scope: str, width: int) -> list[Any]:
    """The values of a cursor this server issued for the ordering ``scope``; else 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        outer = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is not one this server issued") from exc
    if not (
        isinstance(outer, list)
        and len(outer) == 2
        and isinstance(outer[0], str)
        and isinstance(outer[1], list)
    ):
        raise InvalidCursor("the cursor is not one this server issued")
    tag, encoded = outer
    body = _COMPACT_JSON(encoded)
    if tag != _tag(scope, body):
        raise InvalidCursor("the cursor belongs to another list or sort order; start again")
    if len(encoded) != width:
        raise InvalidCursor("the cursor does not fit this list's ordering")
    try:
        return [_decode_value(v) for v in encoded]
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as exc:
        raise InvalidCursor("the cursor is not one this server issued") from exc


# -- the values' types and bounds ----------------------------------------------------------

# What a cursor value must be for a column of each SQL type (TypeDecorators are
# judged by their underlying type; sqlmodel's AutoString is a String).
_CURSOR_TYPES: list[tuple[type[TypeEngine[Any]], type]] = [
    (DateTime, datetime),
    (Date, date),
    (Boolean, bool),
    (Integer, int),
    (Uuid, uuid.UUID),
    (Numeric, Decimal),
    (String, str),
]
_INT_BOUNDS: list[tuple[type[TypeEngine[Any]], int]] = [
    (SmallInteger, 2**15),
    (BigInteger, 2**63),
    (Integer, 2**31),
]


def _sql_type(column: Any) -> Any:
    sql_type = column.type
    return getattr(sql_type, "impl_instance", sql_type)


def _value_rule(column: Any) -> tuple[type | None, int | None]:
    """What a cursor value for ``column`` must be: its Python type and an integer's bound."""
    sql_type = _sql_type(column)
    expected = next((py for sql, py in _CURSOR_TYPES if isinstance(sql_type, sql)), None)
    bound = None
    if expected is int:
        bound = next(b for sql, b in _INT_BOUNDS if isinstance(sql_type, sql))
    return expected, bound


def _check_value(expected: type | None, bound: int | None, value: Any) -> None:
    if expected is None:
        raise InvalidCursor("this list cannot be paged by cursor on that column")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise InvalidCursor("the cursor does not fit this list's ordering")
    if bound is not None and isinstance(value, int):
        if not -bound <= value < bound:
            raise InvalidCursor("a cursor value is out of range")
    elif isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > 30:
            raise InvalidCursor("a cursor value is out of range")
    elif isinstance(value, str) and (why := unstorable_text(value)):
        raise InvalidCursor(f"a cursor value {why}")


def _check_values(keys: Sequence[OrderKey], values: Sequence[Any]) -> None:
    """A forged cursor is a 400, not a database error. NULL only for a nullable column."""
    _ordering(tuple(keys)).check(values)


# -- the query -----------------------------------------------------------------------------


def _equal(key: OrderKey, value: Any) -> Any:
    return key.column.is_(None) if value is None else key.column == value


def _beyond(key: OrderKey, value: Any) -> Any:
    """The rows past ``value`` on ``key`` alone, NULL being greater than every value."""
    if value is None:  # past NULL: nothing ascending, every value descending
        return false() if not key.descending else key.column.is_not(None)
    if key.descending:
        return key.column < value  # NULLs come before any value: ``<`` leaves them out
    if key.may_be_null:
        return or_(key.column > value, key.column.is_(None))
    return key.column > value


def _after(keys: Sequence[OrderKey], bounds: Sequence[Any], row: Any) -> Any:
    """The rows after the cursor in the order of ``keys``: ``bounds`` are the cursor's
    values as bind parameters, ``None`` where a value is NULL; ``row`` is ``tuple_`` of
    the keys' columns.

    When every key runs the same way (a sort column and the id always do), this is one
    row-value comparison, ``(updated_at, id) < (:t, :id)``: PostgreSQL takes it as a
    range condition on an index over those columns and starts the scan at the cursor,
    so a deep page costs what the first one does. The equivalent OR-expansion
    (``updated_at < :t OR updated_at = :t AND id < :id``) is only a filter on an index
    scan that starts at the top of the list: every row before the cursor is read and
    thrown away, and page 2,000 of a million rows took ~200 ms instead of ~0.5 ms.
    Mixed directions keep the OR-expansion.

    NULL sorts greater than every value. A row-value comparison is never true where
    it meets a NULL, so with a nullable key it still gives the non-null rows after the
    cursor, and descending that is all of them; ascending, the NULLs that follow are
    added: ``(due_date, id) > (:d, :id) OR due_date IS NULL``. A cursor holding NULL
    takes the OR-expansion: ``due_date IS NULL AND id > :id`` ascending,
    ``due_date IS NULL AND id < :id OR due_date IS NOT NULL`` descending.
    """
    if len({key.descending for key in keys}) == 1 and all(b is not None for b in bounds):
        bound = tuple_(*bounds)
        if keys[0].descending:
            return row < bound
        nulls_after = [
            and_(
                *(_equal(k, b) for k, b in zip(keys[:i], bounds[:i], strict=True)),
                key.column.is_(None),
            )
            for i, key in enumerate(keys)
            if key.may_be_null
        ]
        return or_(row > bound, *nulls_after) if nulls_after else row > bound
    clauses = []
    for i, key in enumerate(keys):
        equal = [_equal(k, b) for k, b in zip(keys[:i], bounds[:i], strict=True)]
        clauses.append(and_(*equal, _beyond(key, bounds[i])))
    return or_(*clauses)


@dataclass(frozen=True)
class Shaped:
    """A ``SELECT`` given as its shape and its values, for :func:`paginate`.

    ``build()`` makes the statement with a bind parameter wherever a value goes, so its
    SQL is the same for every value; ``values`` binds them. ``key`` names the shape
    (which filters, on which columns): a page's statement (with its cursor clause,
    order and limit) is then built once per shape, ordering and cursor, and SQLAlchemy's
    cache key of that one statement object is computed once, instead of building the
    statement and its key anew for every request (a fifth of a list request's CPU).
    """

    key: Hashable
    build: Callable[[], Select[Any]]
    values: Mapping[str, Any]


# A shaped page's statement per (shape, ordering, which cursor values are NULL).
_PAGES: dict[tuple[Hashable, _Ordering, tuple[bool, ...] | None], Select[Any]] = {}
_MAX_PAGES = 1000
_LIMIT_PARAM = "crm2_page_limit"


def _shaped_page(
    shaped: Shaped, ordering: _Ordering, cursor_values: Sequence[Any] | None, limit: int
) -> tuple[Select[Any], dict[str, Any]]:
    after: tuple[Any, dict[str, Any]] | None = None
    nulls = None
    if cursor_values is not None:
        after = ordering.after(cursor_values)
        nulls = tuple(value is None for value in cursor_values)
    cache_key = (shaped.key, ordering, nulls)
    stmt = _PAGES.get(cache_key)
    if stmt is None:
        stmt = shaped.build()
        if after is not None:
            stmt = stmt.where(after[0])
        stmt = stmt.order_by(*ordering.order_by).limit(bindparam(_LIMIT_PARAM, type_=Integer))
        if len(_PAGES) >= _MAX_PAGES:
            _PAGES.clear()
        _PAGES[cache_key] = stmt
    bound = {**shaped.values, _LIMIT_PARAM: limit}
    if after is not None:
        bound.update(after[1])
    return stmt, bound


async def paginate(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]] | Shaped,
    keys: Sequence[OrderKey],
    params: PageParams,
    *,
    scalars: bool = True,
    row: Callable[[Sequence[Any]], Any] | None = None,
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` ordered by ``keys`` from ``params.cursor``; return rows and the next cursor.

    By default the rows are the first column of each result row (the ORM objects of a
    ``select(Model)``). With ``scalars=False`` they are the result rows themselves, for a
    ``select`` of plain columns: no ORM objects are built, which is what makes a large
    export cheap. The statement must then select every column of ``keys``; ``row`` then
    makes each row from its values (a named tuple class's ``_make``), the keys being
    read from it by attribute. A :class:`Shaped` statement's page is built once per shape.
    """
    ordering = _ordering(tuple(keys))
    scope = ordering.scope
    bound: dict[str, Any] | None = None
    cursor_values: list[Any] | None = None
    if params.cursor:
        cursor_values = decode_cursor(params.cursor, scope, len(keys))
        ordering.check(cursor_values)
    if isinstance(stmt, Shaped):
        stmt, bound = _shaped_page(stmt, ordering, cursor_values, params.limit + 1)
    else:
        if cursor_values is not None:
            after, bound = ordering.after(cursor_values)
            stmt = stmt.where(after)
        stmt = stmt.order_by(*ordering.order_by).limit(params.limit + 1)
    if scalars:
        rows = list((await session.execute(stmt, bound)).scalars())
    else:  # plain rows: straight through the driver where it can (a GET on PostgreSQL)
        rows = await select_rows(session, stmt, row, bound)
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    if scalars or row is not None:
        values = [getattr(last, k.column.key) for k in keys]
    else:  # a key given as an entity's attribute names the table's column by its key
        mapping = last._mapping
        values = [
            mapping[k.column] if k.column in mapping else getattr(last, k.column.key) for k in keys
        ]
    return rows, encode_cursor(values, scope)
