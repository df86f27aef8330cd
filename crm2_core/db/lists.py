"""``column IN (a list of values)`` as one parameter on PostgreSQL: ``column = ANY($1)``.

SQLAlchemy's ``in_(values)`` renders one bound parameter per value at each execution
(an "expanding" parameter): a statement of 500 ids is compiled again for every call
(each parameter with its ``::VARCHAR`` cast on asyncpg), and every length is another
SQL text, so asyncpg prepares it again and PostgreSQL parses and plans it again. On
the paths that take hundreds of values at once — a handler claiming a relay batch, a
CSV import looking up a batch's e-mails — that was a tenth of the serving process's
CPU (bench scenario 11). ``= ANY`` with one array parameter is one SQL text whatever
the length: compiled once, prepared once, and it uses the column's index as ``IN`` does.

SQLite has no arrays: there the same call is the ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def in_values(column: Any, values: Iterable[Any], dialect: str) -> ColumnElement[bool]:
    """``column`` (a table's column, or a model's: ``col(Model.field)``) equals one of
    ``values``, for ``dialect`` (the session's ``get_bind().dialect.name``)."""
    listed = list(values)
    if dialect == "postgresql":
        return column == any_(bindparam(None, listed, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(listed)  # type: ignore[no-any-return]


def in_param(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` equals one of the values given at execution as parameter ``name``
    (a list): for a statement built once and run many times."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True, type_=column.type))  # type: ignore[no-any-return]
