"""List filters as optional WHERE clauses: a filter left out of the query adds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, cast, column, exists, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

S = TypeVar("S", bound=Select[Any])


def where_all(stmt: S, *clauses: Any) -> S:
    """``stmt`` with every clause that is not ``None``."""
    for clause in clauses:
        if clause is not None:
            stmt = stmt.where(clause)
    return stmt


def eq(column_: Any, value: Any) -> Any:
    return None if value is None else column_ == value


def at_least(column_: Any, value: Any) -> Any:
    return None if value is None else column_ >= value


def at_most(column_: Any, value: Any) -> Any:
    return None if value is None else column_ <= value


def one_of(column_: Any, values: Sequence[Any] | None) -> Any:
    """An empty or missing list means no filter."""
    return column_.in_(values) if values else None


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards escaped (used with ``escape="\\\\"``)."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains_text(q: str | None, *columns: Any) -> Any:
    """``q`` (case-insensitive) inside any of ``columns``."""
    if not q:
        return None
    pattern = like_pattern(q)
    return or_(*(func.lower(c).like(pattern, escape="\\") for c in columns))


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
