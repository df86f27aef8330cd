"""List filters as optional WHERE clauses: a filter left out of the query adds nothing.

``eq``, ``at_least``, ``at_most`` and ``contains_text`` answer a :class:`Condition`:
usable wherever SQLAlchemy takes a clause (``where_all``, ``stmt.where``), and, given
to ``Repository.filtered``, a list query whose statement is built once per shape.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Select,
    String,
    bindparam,
    cast,
    column,
    exists,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from crm2_core.db.folding import fold_text, folded, folded_pattern
from crm2_core.db.pagination import Shaped

S = TypeVar("S", bound=Select[Any])
_TEXT = String()
# ``(columns, right side) -> clause``: the right side is a value or a bind parameter.
Operator = Callable[[tuple[Any, ...], Any], Any]


@dataclass(frozen=True, eq=False)
class Condition:
    """One filter, ``operator(columns, value)``, whose SQL depends on its operator and
    columns only (its shape), never on its value.

    ``operator`` is a module-level function (it is part of the shape's key) taking the
    columns and the right side: the value, or the bind parameter that stands for it
    (untyped: it takes the type of what it is compared with, so compare it with a
    typed expression, as ``func.lower(column, type_=String())``).
    """

    operator: Operator
    columns: tuple[Any, ...]
    value: Any

    @property
    def shape(self) -> tuple[Operator, tuple[Any, ...]]:
        return (self.operator, self.columns)

    def bound(self, name: str) -> Any:
        """The clause with the bind parameter ``name`` in the value's place."""
        return self.operator(self.columns, bindparam(name))

    def __clause_element__(self) -> Any:
        """The clause with the value in it, for anywhere SQLAlchemy takes a clause."""
        return self.operator(self.columns, self.value)


@dataclass(frozen=True)
class Filtered:
    """The rows of ``base`` that meet every clause: a list's query as a shape and values.

    ``shared``: ``base`` is built once and shared (``Repository.base``), so it can be
    part of the shape. Then, when every clause is a :class:`Condition`, :meth:`shaped`
    gives the query to ``paginate`` as a :class:`Shaped`, each value a bind parameter; a
    plain SQLAlchemy clause among them (an ``IN`` list, a JSON test) or a base built per
    call makes it an ordinary statement (:meth:`statement`), its values in it.
    """

    base: Select[Any]
    clauses: tuple[Any, ...]
    shared: bool = True

    def statement(self) -> Select[Any]:
        """``base`` with every clause, the values in it."""
        return self.base.where(*self.clauses) if self.clauses else self.base

    def shaped(self) -> Shaped | None:
        conditions = self.clauses
        if not (self.shared and all(isinstance(c, Condition) for c in conditions)):
            return None
        if len(conditions) > len(_WHERE_PARAMS):
            return None
        key: Hashable = (self.base, tuple(c.shape for c in conditions))
        names = _WHERE_PARAMS[: len(conditions)]
        base = self.base

        def build() -> Select[Any]:
            clauses = [c.bound(name) for c, name in zip(conditions, names, strict=True)]
            return base.where(*clauses) if clauses else base

        return Shaped(key, build, {n: c.value for n, c in zip(names, conditions, strict=False)})

    def query(self) -> Select[Any] | Shaped:
        """What ``paginate`` runs: :meth:`shaped`, else :meth:`statement`."""
        return self.shaped() or self.statement()


# The conditions' parameter names: no list statement uses them for anything else.
_WHERE_PARAMS = tuple(f"crm2_where_{i}" for i in range(64))


def where_all(stmt: S, *clauses: Any) -> S:
    """``stmt`` with every clause that is not ``None``."""
    for clause in clauses:
        if clause is not None:
            stmt = stmt.where(clause)
    return stmt


def _eq(columns: tuple[Any, ...], right: Any) -> Any:
    return columns[0] == right


def _at_least(columns: tuple[Any, ...], right: Any) -> Any:
    return columns[0] >= right


def _at_most(columns: tuple[Any, ...], right: Any) -> Any:
    return columns[0] <= right


def _lower_like(columns: tuple[Any, ...], right: Any) -> Any:
    # folded(): one folding rule on both databases (SQLite's own lower() and LIKE fold
    # ASCII only): "élise" finds "Élise", "κοσμος" finds "ΚΟΣΜΟΣ" on both.
    pattern = folded_pattern(type_coerce(right, _TEXT))  # a str bind, as LIKE would make it
    return or_(*(folded(c).like(pattern, escape="\\") for c in columns))


def eq(column_: Any, value: Any) -> Condition | None:
    return None if value is None else Condition(_eq, (column_,), value)


def at_least(column_: Any, value: Any) -> Condition | None:
    return None if value is None else Condition(_at_least, (column_,), value)


def at_most(column_: Any, value: Any) -> Condition | None:
    return None if value is None else Condition(_at_most, (column_,), value)


def one_of(column_: Any, values: Sequence[Any] | None) -> Any:
    """An empty or missing list means no filter."""
    return column_.in_(values) if values else None


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards escaped (used with ``escape="\\\\"``)."""
    escaped = fold_text(text.strip()).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains_text(q: str | None, *columns: Any) -> Condition | None:
    """``q`` (case-insensitive) inside any of ``columns``."""
    return Condition(_lower_like, columns, like_pattern(q)) if q else None


def json_list_contains(session: AsyncSession, json_column: Any, value: str | None) -> Any:
    """``value`` is an element of a JSON array column, on PostgreSQL and SQLite."""
    if value is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        return cast(json_column, postgresql.JSONB).contains([value])
    elements = func.json_each(json_column).table_valued("value")
    return exists(select(1).select_from(elements).where(column("value") == value))


def as_utc(value: datetime | None) -> datetime | None:
    """A query-string time without a zone is read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
